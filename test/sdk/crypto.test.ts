/**
 * sdk/crypto.ts against ethers: libsecp256k1 must give exactly ethers' signatures (RFC 6979, low s) and recover exactly
 * the addresses ethers recovers, for digests, EIP-712 messages, personal messages and transactions; a malformed
 * signature throws as it does with ethers. The native keccak256 it registers must hash exactly as ethers' own
 * JavaScript one, and sdk/eip712's cached digests must be TypedDataEncoder's.
 */
import { expect } from "chai";
import fc from "fast-check";
import {
  Signature,
  Transaction,
  TypedDataEncoder,
  Wallet,
  getBytes,
  hexlify,
  keccak256,
  recoverAddress,
  verifyMessage,
  verifyTypedData,
  type TypedDataDomain,
} from "ethers";
import { FastSigningKey, fastWallet, messageSigner, nativeKeccak, recoverSigner } from "../../sdk/crypto";
import { MESSAGE_TYPES, ORDER_TYPES, hashMessage, hashOrder, signMessage, signOrder, type RequestOrder } from "../../sdk/eip712";

/** ethers' own JavaScript keccak256, kept by `keccak256.register` as `keccak256._`. */
const javascriptKeccak = (keccak256 as unknown as { _: (data: Uint8Array) => Uint8Array })._;
const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => hexlify(b));
const uint = fc.bigInt({ min: 0n, max: (1n << 256n) - 1n });

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => hexlify(b));
const privateKey = fc.bigInt({ min: 1n, max: SECP256K1_N - 1n }).map((k) => `0x${k.toString(16).padStart(64, "0")}`);
const domain: TypedDataDomain = { name: "Concord", version: "1", chainId: 31337, verifyingContract: "0x5FC8d32690cc91D4c39d9d3abcBD16989F875707" };

describe("sdk crypto: libsecp256k1 signatures, the same as ethers'", function () {
  it("signs every digest exactly as ethers' SigningKey, and recovers the same address", function () {
    fc.assert(
      fc.property(privateKey, bytes32, (key, digest) => {
        const ours = new FastSigningKey(key).sign(digest);
        const theirs = new Wallet(key).signingKey.sign(digest);
        expect(ours.serialized).to.equal(theirs.serialized);
        expect(recoverSigner(digest, ours)).to.equal(new Wallet(key).address);
        expect(recoverSigner(digest, theirs.serialized)).to.equal(recoverAddress(digest, theirs));
      }),
      { numRuns: 200 },
    );
  });

  it("EIP-712 and personal messages: the same signatures and signers as ethers' Wallet and verify functions", async function () {
    for (let i = 0; i < 10; i++) {
      const key = Wallet.createRandom().privateKey;
      const value = { taskId: hexlify(getBytes(`0x${"1".repeat(63)}${i}`)), resultHash: `0x${"22".repeat(32)}`, resultSeal: `0x${"33".repeat(32)}` };
      const types = { Contribution: [...MESSAGE_TYPES.Contribution] };
      const ours = await fastWallet(key).signTypedData(domain, types, value);
      expect(ours).to.equal(await new Wallet(key).signTypedData(domain, types, value));
      expect(recoverSigner(hashMessage(domain, "Contribution", value), ours)).to.equal(verifyTypedData(domain, types, value, ours));
      const message = `concord login ${i}`;
      const signed = await fastWallet(key).signMessage(message);
      expect(signed).to.equal(await new Wallet(key).signMessage(message));
      expect(messageSigner(message, signed)).to.equal(verifyMessage(message, signed));
    }
  });

  it("registers the native keccak256, which hashes exactly as ethers' JavaScript one (every length around the rate)", function () {
    expect(nativeKeccak).to.equal(true);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (data) => {
        expect(keccak256(data)).to.equal(hexlify(javascriptKeccak(data)));
      }),
      { numRuns: 500 },
    );
    for (let n = 130; n <= 140; n++) {
      const data = new Uint8Array(n).fill(n);
      expect(keccak256(data), `${n} bytes`).to.equal(hexlify(javascriptKeccak(data)));
    }
  });

  it("EIP-712 digests and signatures of sdk/eip712 (cached encoders and domains) are ethers' TypedDataEncoder's", async function () {
    const request = fc.record({
      app: uint, appmaxprice: uint, dataset: uint, datasetmaxprice: uint, workerpool: uint, workerpoolmaxprice: uint,
      requester: address, volume: uint, tag: bytes32, category: uint, trust: uint, beneficiary: address,
      callback: address, params: fc.string({ maxLength: 200 }), expiry: uint, nonce: uint, salt: bytes32,
    });
    const domains = fc.record({ chainId: fc.integer({ min: 1, max: 1_000_000 }), verifyingContract: address });
    await fc.assert(
      fc.asyncProperty(request, domains, privateKey, async (order: RequestOrder, dom, key) => {
        const d: TypedDataDomain = { name: "Concord", version: "1", ...dom };
        const types = { RequestOrder: ORDER_TYPES.RequestOrder.map((f) => ({ ...f })) };
        expect(hashOrder(d, "RequestOrder", order)).to.equal(TypedDataEncoder.hash(d, types, order));
        expect((await signOrder(fastWallet(key), d, "RequestOrder", order)).sign).to.equal(await new Wallet(key).signTypedData(d, types, order));
        const reveal = { taskId: order.tag, resultDigest: order.salt };
        const revealTypes = { Reveal: MESSAGE_TYPES.Reveal.map((f) => ({ ...f })) };
        expect(hashMessage(d, "Reveal", reveal)).to.equal(TypedDataEncoder.hash(d, revealTypes, reveal));
        expect(await signMessage(new Wallet(key), d, "Reveal", reveal)).to.equal(await new Wallet(key).signTypedData(d, revealTypes, reveal));
      }),
      { numRuns: 60 },
    );
    expect(() => hashOrder(domain, "Authorization" as never, {} as never), "a message kind is not an order").to.throw(TypeError, /unknown EIP-712 type/);
    expect(() => hashMessage(domain, "RequestOrder" as never, {}), "an order kind is not a message").to.throw(TypeError, /unknown EIP-712 type/);
  });

  it("signs transactions exactly as ethers' Wallet (the same raw bytes, the same sender)", async function () {
    const key = Wallet.createRandom().privateKey;
    const tx = { to: "0x5FC8d32690cc91D4c39d9d3abcBD16989F875707", data: "0x1234", nonce: 7, gasLimit: 100_000n, chainId: 31337n, type: 2, maxFeePerGas: 2_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n };
    const ours = await fastWallet(key).signTransaction(tx);
    expect(ours).to.equal(await new Wallet(key).signTransaction(tx));
    expect(Transaction.from(ours).from).to.equal(new Wallet(key).address);
  });

  it("throws on a malformed or unrecoverable signature, as ethers does", function () {
    const digest = `0x${"ab".repeat(32)}`;
    const good = new FastSigningKey(Wallet.createRandom().privateKey).sign(digest);
    for (const bad of ["0x", "0x1234", `0x${"00".repeat(65)}`]) {
      expect(() => recoverSigner(digest, bad), bad).to.throw();
      expect(() => recoverAddress(digest, bad), bad).to.throw();
    }
    // r = 0 passes ethers' parsing but no key signed it
    const zeroR = Signature.from({ r: `0x${"00".repeat(32)}`, s: good.s, v: good.v });
    expect(() => recoverSigner(digest, zeroR)).to.throw();
    expect(() => new FastSigningKey(Wallet.createRandom().privateKey).sign("0x1234")).to.throw(TypeError, /32 bytes/);
  });
});
