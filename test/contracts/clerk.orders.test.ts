/**
 * Clerk order book: EIP-712 hash parity with the TypeScript SDK, on-chain presigning, cancellation of one order,
 * cancellation of all of a signer's orders by nonce, and the orderState view.
 */
import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import fc from "fast-check";
import { ZeroAddress, ZeroHash, getAddress, hexlify, id } from "ethers";
import {
  TASK_PRICE,
  deployFixture,
  Fixture,
  OrderSet,
  appOrder,
  datasetOrder,
  requestOrder,
  signedOrders,
  unsigned,
  workerpoolOrder,
} from "../helpers/fixture";
import { Kind, KINDS, article, expectMatchFails, expectMatchable, hashOf, match, signerOf } from "../helpers/orders";
import { AppOrder, DatasetOrder, RequestOrder, WorkerpoolOrder, dealId, hashOrder, signOrder } from "../../sdk/eip712";

function presign(f: Fixture, kind: Kind, o: OrderSet, by: HardhatEthersSigner) {
  const hub = f.hub.connect(by);
  switch (kind) {
    case "app":
      return hub.presignAppOrder(o.app);
    case "dataset":
      return hub.presignDatasetOrder(o.dataset);
    case "workerpool":
      return hub.presignWorkerpoolOrder(o.workerpool);
    case "request":
      return hub.presignRequestOrder(o.request);
  }
}

function cancel(f: Fixture, kind: Kind, o: OrderSet, by: HardhatEthersSigner) {
  const hub = f.hub.connect(by);
  switch (kind) {
    case "app":
      return hub.cancelAppOrder(o.app);
    case "dataset":
      return hub.cancelDatasetOrder(o.dataset);
    case "workerpool":
      return hub.cancelWorkerpoolOrder(o.workerpool);
    case "request":
      return hub.cancelRequestOrder(o.request);
  }
}

/** The same set with one order's signature removed. */
function withoutSignature(o: OrderSet, kind: Kind): OrderSet {
  return { ...o, [kind]: unsigned(o[kind]) };
}

describe("Clerk orders", function () {
  describe("EIP-712 hashes", function () {
    it("hashes an app order exactly as the SDK does", async function () {
      const f = await loadFixture(deployFixture);
      const order: AppOrder = appOrder(f, {
        appprice: 123456789n,
        volume: 7n,
        tag: id("tag"),
        datasetrestrict: 3n,
        workerpoolrestrict: 4n,
        requesterrestrict: f.other.address,
        expiry: 1_900_000_000n,
        nonce: 5n,
      });
      expect(await f.hub.hashAppOrder(unsigned(order))).to.equal(hashOrder(f.domain, "AppOrder", order));
    });

    it("hashes a dataset order exactly as the SDK does", async function () {
      const f = await loadFixture(deployFixture);
      const order: DatasetOrder = datasetOrder(f, {
        datasetprice: 987654321n,
        volume: 9n,
        tag: id("dtag"),
        apprestrict: 2n,
        workerpoolrestrict: 6n,
        requesterrestrict: f.other.address,
        expiry: 1_800_000_000n,
        nonce: 2n,
      });
      expect(await f.hub.hashDatasetOrder(unsigned(order))).to.equal(hashOrder(f.domain, "DatasetOrder", order));
    });

    it("hashes a workerpool order exactly as the SDK does", async function () {
      const f = await loadFixture(deployFixture);
      const order: WorkerpoolOrder = workerpoolOrder(f, {
        workerpoolprice: 5n,
        volume: 11n,
        tag: id("ptag"),
        category: 3n,
        trust: 17n,
        apprestrict: 8n,
        datasetrestrict: 9n,
        requesterrestrict: f.other.address,
        expiry: 1_700_000_000n,
        nonce: 1n,
      });
      expect(await f.hub.hashWorkerpoolOrder(unsigned(order))).to.equal(hashOrder(f.domain, "WorkerpoolOrder", order));
    });

    it("hashes a request order exactly as the SDK does", async function () {
      const f = await loadFixture(deployFixture);
      const order: RequestOrder = requestOrder(f, {
        workerpool: 4n,
        volume: 3n,
        tag: id("rtag"),
        category: 2n,
        trust: 5n,
        beneficiary: f.other.address,
        callback: f.workers[0].address,
        expiry: 1_750_000_000n,
        nonce: 9n,
      });
      expect(await f.hub.hashRequestOrder(unsigned(order))).to.equal(hashOrder(f.domain, "RequestOrder", order));
    });

    it("hashes a request with non-ASCII params exactly as the SDK does", async function () {
      const f = await loadFixture(deployFixture);
      for (const params of ["héllo wörld", "数据 🚀 ∑ naïve — «»", "", '{"args":"\\u0000 ünïcødé"}']) {
        const order = requestOrder(f, { params });
        expect(await f.hub.hashRequestOrder(unsigned(order))).to.equal(hashOrder(f.domain, "RequestOrder", order));
      }
    });

    it("hashes any request order exactly as the SDK does (property)", async function () {
      const f = await loadFixture(deployFixture);
      const u256 = fc.bigInt({ min: 0n, max: 2n ** 256n - 1n });
      const b32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => hexlify(b));
      const addr = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => getAddress(hexlify(b)));
      const order = fc.record({
        app: u256,
        appmaxprice: u256,
        dataset: u256,
        datasetmaxprice: u256,
        workerpool: u256,
        workerpoolmaxprice: u256,
        requester: addr,
        volume: u256,
        tag: b32,
        category: u256,
        trust: u256,
        beneficiary: addr,
        callback: addr,
        params: fc.string({ unit: "binary", maxLength: 40 }),
        expiry: u256,
        nonce: u256,
        salt: b32,
      });
      await fc.assert(
        fc.asyncProperty(order, async (o: RequestOrder) => {
          expect(await f.hub.hashRequestOrder(unsigned(o))).to.equal(hashOrder(f.domain, "RequestOrder", o));
        }),
        { numRuns: 25 },
      );
    });

    it("does not depend on the signature field", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f);
      expect(await f.hub.hashAppOrder(o.app)).to.equal(await f.hub.hashAppOrder(unsigned(o.app)));
      expect(await f.hub.hashRequestOrder(o.request)).to.equal(await f.hub.hashRequestOrder(unsigned(o.request)));
    });

    it("changes with every order (salt)", async function () {
      const f = await loadFixture(deployFixture);
      const a = appOrder(f);
      const b = { ...a, salt: ZeroHash };
      expect(await f.hub.hashAppOrder(unsigned(a))).to.not.equal(await f.hub.hashAppOrder(unsigned(b)));
    });
  });

  describe("presign", function () {
    for (const kind of KINDS) {
      it(`lets the ${kind} order's signer presign it, after which it matches with an empty signature`, async function () {
        const f = await loadFixture(deployFixture);
        const o = withoutSignature(await signedOrders(f), kind);
        const hash = hashOf(f, kind, o);
        const signer = signerOf(f, kind);
        await expectMatchFails(f, o, "ClerkInvalidSignature", [hash, signer.address]);
        await expect(presign(f, kind, o, signer))
          .to.emit(f.hub, "OrderPresigned")
          .withArgs(hash, signer.address);
        expect(await f.hub.orderState(hash)).to.deep.equal([0n, true, false]);
        await expectMatchable(f, o);
        await expect(match(f, o)).to.emit(f.hub, "DealMatched");
        expect(await f.hub.orderState(hash)).to.deep.equal([1n, true, false]);
      });

      it(`refuses to presign ${article(kind)} order for anyone but its signer`, async function () {
        const f = await loadFixture(deployFixture);
        const o = await signedOrders(f);
        const hash = hashOf(f, kind, o);
        await expect(presign(f, kind, o, f.other))
          .to.be.revertedWithCustomError(f.hub, "ClerkNotOrderSigner")
          .withArgs(hash, signerOf(f, kind).address, f.other.address);
        expect(await f.hub.orderState(hash)).to.deep.equal([0n, false, false]);
      });
    }

    it("matches four presigned orders that carry no signature at all", async function () {
      const f = await loadFixture(deployFixture);
      let o = await signedOrders(f);
      for (const kind of KINDS) {
        o = withoutSignature(o, kind);
        await presign(f, kind, o, signerOf(f, kind));
      }
      await expectMatchable(f, o);
      await expect(match(f, o))
        .to.emit(f.hub, "DealMatched")
        .withArgs(
          dealId(hashOf(f, "request", o)),
          hashOf(f, "request", o),
          1n,
          hashOf(f, "app", o),
          hashOf(f, "dataset", o),
          hashOf(f, "workerpool", o),
          f.requester.address,
          1n,
          o.request.params,
        );
    });

    it("refuses a workerpool presign from the scheduler: the pool owner signs pool orders", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f);
      await expect(presign(f, "workerpool", o, f.scheduler))
        .to.be.revertedWithCustomError(f.hub, "ClerkNotOrderSigner")
        .withArgs(hashOf(f, "workerpool", o), f.poolOwner.address, f.scheduler.address);
    });

    it("refuses to presign an order of an unregistered asset (its signer is the zero address)", async function () {
      const f = await loadFixture(deployFixture);
      const order = unsigned(appOrder(f, { app: 99n }));
      await expect(f.hub.connect(f.appOwner).presignAppOrder(order))
        .to.be.revertedWithCustomError(f.hub, "ClerkNotOrderSigner")
        .withArgs(hashOrder(f.domain, "AppOrder", order), ZeroAddress, f.appOwner.address);
    });

    it("stops counting the app owner's presign once the app is transferred, and counts it again when it returns", async function () {
      const f = await loadFixture(deployFixture);
      const o = withoutSignature(await signedOrders(f, { request: { volume: 1n } }), "app");
      const hash = hashOf(f, "app", o);
      await presign(f, "app", o, f.appOwner);
      await expectMatchable(f, o);
      await f.apps.connect(f.appOwner).transferFrom(f.appOwner.address, f.other.address, f.appId);
      // The presign is still on record, but it was made by someone who no longer signs the app's orders.
      expect(await f.hub.orderState(hash)).to.deep.equal([0n, true, false]);
      await expectMatchFails(f, o, "ClerkInvalidSignature", [hash, f.other.address]);
      await f.apps.connect(f.other).transferFrom(f.other.address, f.appOwner.address, f.appId);
      await expectMatchable(f, o);
      await expect(match(f, o)).to.emit(f.hub, "DealMatched");
      expect(await f.hub.orderState(hash)).to.deep.equal([1n, true, false]);
    });

    it("does not let a presign survive a dataset sale, but lets the new owner presign the order itself", async function () {
      const f = await loadFixture(deployFixture);
      const o = withoutSignature(await signedOrders(f), "dataset");
      const hash = hashOf(f, "dataset", o);
      await presign(f, "dataset", o, f.datasetOwner);
      await f.datasets.connect(f.datasetOwner).transferFrom(f.datasetOwner.address, f.other.address, f.datasetId);
      await expectMatchFails(f, o, "ClerkInvalidSignature", [hash, f.other.address]);
      // The former owner can no longer presign it.
      await expect(presign(f, "dataset", o, f.datasetOwner))
        .to.be.revertedWithCustomError(f.hub, "ClerkNotOrderSigner")
        .withArgs(hash, f.other.address, f.datasetOwner.address);
      await expect(presign(f, "dataset", o, f.other))
        .to.emit(f.hub, "OrderPresigned")
        .withArgs(hash, f.other.address);
      await expectMatchable(f, o);
      await expect(match(f, o)).to.emit(f.hub, "DealMatched");
    });

    it("treats a request whose requester is the zero address as not presigned", async function () {
      const f = await loadFixture(deployFixture);
      // Someone credits the zero address's escrow account (depositFor does not refuse it).
      await f.hub.connect(f.other).depositFor(ZeroAddress, TASK_PRICE);
      const o = withoutSignature(
        await signedOrders(f, { request: { requester: ZeroAddress, beneficiary: f.other.address } }),
        "request",
      );
      const hash = hashOf(f, "request", o);
      expect(await f.hub.orderState(hash)).to.deep.equal([0n, false, false]);
      // Nobody presigned or signed it: it must not spend the zero address's funds.
      await expectMatchFails(f, o, "ClerkInvalidSignature", [hash, ZeroAddress]);
      expect(await f.hub.accountOf(ZeroAddress)).to.deep.equal([TASK_PRICE, 0n]);
    });

    it("binds the presign to the exact order: a modified order is not presigned", async function () {
      const f = await loadFixture(deployFixture);
      const o = withoutSignature(await signedOrders(f), "request");
      await presign(f, "request", o, f.requester);
      const changed = { ...o, request: { ...o.request, volume: 2n } };
      await expectMatchFails(f, changed, "ClerkInvalidSignature", [hashOf(f, "request", changed), f.requester.address]);
    });
  });

  describe("cancel", function () {
    for (const kind of KINDS) {
      it(`lets the ${kind} order's signer cancel it, after which it no longer matches`, async function () {
        const f = await loadFixture(deployFixture);
        const o = await signedOrders(f);
        const hash = hashOf(f, kind, o);
        const signer = signerOf(f, kind);
        await expectMatchable(f, o);
        await expect(cancel(f, kind, o, signer))
          .to.emit(f.hub, "OrderCancelled")
          .withArgs(hash, signer.address);
        // Cancelling leaves the consumed volume as it was and only raises the cancelled flag.
        expect(await f.hub.orderState(hash)).to.deep.equal([0n, false, true]);
        await expectMatchFails(f, o, "ClerkOrderConsumed", [hash]);
      });

      it(`refuses to cancel ${article(kind)} order for anyone but its signer`, async function () {
        const f = await loadFixture(deployFixture);
        const o = await signedOrders(f);
        const hash = hashOf(f, kind, o);
        await expect(cancel(f, kind, o, f.other))
          .to.be.revertedWithCustomError(f.hub, "ClerkNotOrderSigner")
          .withArgs(hash, signerOf(f, kind).address, f.other.address);
        expect(await f.hub.orderState(hash)).to.deep.equal([0n, false, false]);
        await expectMatchable(f, o);
      });
    }

    it("cancels the remaining volume of a partly consumed order", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { app: { volume: 5n }, request: { volume: 2n } });
      await match(f, o);
      const appHash = hashOf(f, "app", o);
      expect(await f.hub.orderState(appHash)).to.deep.equal([2n, false, false]);
      await f.hub.connect(f.appOwner).cancelAppOrder(o.app);
      expect(await f.hub.orderState(appHash)).to.deep.equal([2n, false, true]);
      const next = await signedOrders(f);
      await expectMatchFails(f, { ...next, app: o.app }, "ClerkOrderConsumed", [appHash]);
    });

    it("cancels a presigned order", async function () {
      const f = await loadFixture(deployFixture);
      const o = withoutSignature(await signedOrders(f), "request");
      const hash = hashOf(f, "request", o);
      await presign(f, "request", o, f.requester);
      await cancel(f, "request", o, f.requester);
      expect(await f.hub.orderState(hash)).to.deep.equal([0n, true, true]);
      await expectMatchFails(f, o, "ClerkOrderConsumed", [hash]);
    });

    it("keeps an order cancelled when its signer presigns it afterwards", async function () {
      const f = await loadFixture(deployFixture);
      const o = withoutSignature(await signedOrders(f), "app");
      const hash = hashOf(f, "app", o);
      await cancel(f, "app", o, f.appOwner);
      await presign(f, "app", o, f.appOwner);
      expect(await f.hub.orderState(hash)).to.deep.equal([0n, true, true]);
      await expectMatchFails(f, o, "ClerkOrderConsumed", [hash]);
    });

    it("reports the full consumed volume of an exhausted order it cancels", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { request: { volume: 3n } });
      await match(f, o);
      const hash = hashOf(f, "request", o);
      expect(await f.hub.orderState(hash)).to.deep.equal([3n, false, false]);
      await expect(cancel(f, "request", o, f.requester))
        .to.emit(f.hub, "OrderCancelled")
        .withArgs(hash, f.requester.address);
      expect(await f.hub.orderState(hash)).to.deep.equal([3n, false, true]);
      await expectMatchFails(f, o, "ClerkOrderConsumed", [hash]);
    });

    it("lets the requester cancel an order it never signed nor published", async function () {
      const f = await loadFixture(deployFixture);
      const order = unsigned(requestOrder(f));
      const hash = hashOrder(f.domain, "RequestOrder", order);
      await expect(f.hub.connect(f.requester).cancelRequestOrder(order))
        .to.emit(f.hub, "OrderCancelled")
        .withArgs(hash, f.requester.address);
      expect(await f.hub.orderState(hash)).to.deep.equal([0n, false, true]);
    });
  });

  describe("incrementOrderNonce", function () {
    it("revokes every order signed under the old nonce; orders carrying the new nonce match", async function () {
      const f = await loadFixture(deployFixture);
      expect(await f.hub.orderNonce(f.requester.address)).to.equal(0n);
      await expect(f.hub.connect(f.requester).incrementOrderNonce())
        .to.emit(f.hub, "OrderNonceIncremented")
        .withArgs(f.requester.address, 1n);
      expect(await f.hub.orderNonce(f.requester.address)).to.equal(1n);
      const old = await signedOrders(f);
      await expectMatchFails(f, old, "ClerkOrderNonceRevoked", [hashOf(f, "request", old), 0n, 1n]);
      const fresh = await signedOrders(f, { request: { nonce: 1n } });
      await expectMatchable(f, fresh);
      await expect(match(f, fresh)).to.emit(f.hub, "DealMatched");
    });

    it("revokes an asset owner's orders only: other signers keep nonce 0", async function () {
      const f = await loadFixture(deployFixture);
      await f.hub.connect(f.appOwner).incrementOrderNonce();
      expect(await f.hub.orderNonce(f.appOwner.address)).to.equal(1n);
      expect(await f.hub.orderNonce(f.requester.address)).to.equal(0n);
      const old = await signedOrders(f);
      await expectMatchFails(f, old, "ClerkOrderNonceRevoked", [hashOf(f, "app", old), 0n, 1n]);
      const fresh = await signedOrders(f, { app: { nonce: 1n } });
      await expect(match(f, fresh)).to.emit(f.hub, "DealMatched");
    });

    it("counts up by one on every call", async function () {
      const f = await loadFixture(deployFixture);
      await f.hub.connect(f.other).incrementOrderNonce();
      await expect(f.hub.connect(f.other).incrementOrderNonce())
        .to.emit(f.hub, "OrderNonceIncremented")
        .withArgs(f.other.address, 2n);
      expect(await f.hub.orderNonce(f.other.address)).to.equal(2n);
    });

    it("refuses an order carrying a future nonce", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { request: { nonce: 1n } });
      await expectMatchFails(f, o, "ClerkOrderNonceRevoked", [hashOf(f, "request", o), 1n, 0n]);
    });
  });

  describe("orderState", function () {
    it("is empty for an unknown order", async function () {
      const f = await loadFixture(deployFixture);
      expect(await f.hub.orderState(id("nothing"))).to.deep.equal([0n, false, false]);
    });

    it("reports the volume each order consumed in a match", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { request: { volume: 4n } });
      await match(f, o);
      for (const kind of KINDS) expect(await f.hub.orderState(hashOf(f, kind, o))).to.deep.equal([4n, false, false]);
    });

    it("is keyed by the EIP-712 hash signed by the signer", async function () {
      const f = await loadFixture(deployFixture);
      const order = requestOrder(f);
      const signed = await signOrder(f.requester, f.domain, "RequestOrder", order);
      const hash = await f.hub.hashRequestOrder(signed);
      await f.hub.connect(f.requester).presignRequestOrder(signed);
      expect(await f.hub.orderState(hash)).to.deep.equal([0n, true, false]);
    });
  });
});
