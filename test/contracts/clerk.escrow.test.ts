/**
 * Clerk escrow: deposits (plain, on behalf of another account, with an EIP-2612 permit), withdrawals, the account
 * views, and the solvency invariant (the hub holds exactly the sum of every balance, every frozen amount and the kitty).
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroHash, parseEther } from "ethers";
import {
  INITIAL_DEPOSIT,
  INITIAL_TOKENS,
  PRICES,
  deployFixture,
  Fixture,
  newcomer,
  signedOrders,
} from "../helpers/fixture";
import { permitSignature } from "../helpers/permit";

/** Every account that may hold escrow in these tests. */
async function everyAccount(f: Fixture): Promise<string[]> {
  return (await ethers.getSigners()).map((s) => s.address);
}

/** Asserts the hub's token balance equals the sum of all balances, all frozen funds and the kitty. */
async function expectSolvent(f: Fixture) {
  let total = await f.hub.kitty();
  for (const account of await everyAccount(f)) {
    const [balance, frozen] = await f.hub.accountOf(account);
    total += balance + frozen;
  }
  expect(await f.token.balanceOf(await f.hub.getAddress())).to.equal(total);
}

async function farDeadline(): Promise<bigint> {
  return BigInt(await time.latest()) + 3600n;
}

describe("Clerk escrow", function () {
  describe("views", function () {
    it("exposes the escrow token", async function () {
      const f = await loadFixture(deployFixture);
      expect(await f.hub.token()).to.equal(await f.token.getAddress());
    });

    it("reports the fixture's deposits as free balance with nothing frozen and an empty kitty", async function () {
      const f = await loadFixture(deployFixture);
      expect(await f.hub.accountOf(f.requester.address)).to.deep.equal([INITIAL_DEPOSIT, 0n]);
      expect(await f.hub.balanceOf(f.requester.address)).to.equal(INITIAL_DEPOSIT);
      expect(await f.hub.frozenOf(f.requester.address)).to.equal(0n);
      expect(await f.hub.accountOf(f.other.address)).to.deep.equal([0n, 0n]);
      expect(await f.hub.kitty()).to.equal(0n);
      await expectSolvent(f);
    });

    it("reports frozen funds separately from the free balance once a deal locks them", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f, { request: { volume: 2n } });
      await f.hub.connect(f.requester).matchOrders(o.app, o.dataset, o.workerpool, o.request);
      const price = (PRICES.app + PRICES.dataset + PRICES.workerpool) * 2n;
      expect(await f.hub.accountOf(f.requester.address)).to.deep.equal([INITIAL_DEPOSIT - price, price]);
      expect(await f.hub.balanceOf(f.requester.address)).to.equal(INITIAL_DEPOSIT - price);
      expect(await f.hub.frozenOf(f.requester.address)).to.equal(price);
      const stake = ((PRICES.workerpool * 30n) / 100n) * 2n;
      expect(await f.hub.accountOf(f.scheduler.address)).to.deep.equal([INITIAL_DEPOSIT - stake, stake]);
      await expectSolvent(f);
    });
  });

  describe("deposit", function () {
    it("credits the caller and pulls the tokens from its wallet", async function () {
      const f = await loadFixture(deployFixture);
      const amount = parseEther("7");
      const tx = f.hub.connect(f.other).deposit(amount);
      await expect(tx).to.emit(f.hub, "Deposited").withArgs(f.other.address, f.other.address, amount);
      await expect(tx).to.changeTokenBalances(f.token, [f.other, f.hub], [-amount, amount]);
      expect(await f.hub.accountOf(f.other.address)).to.deep.equal([amount, 0n]);
      await expectSolvent(f);
    });

    it("adds to an existing balance", async function () {
      const f = await loadFixture(deployFixture);
      await f.hub.connect(f.requester).deposit(parseEther("5"));
      expect(await f.hub.balanceOf(f.requester.address)).to.equal(INITIAL_DEPOSIT + parseEther("5"));
      await expectSolvent(f);
    });

    it("refuses a zero deposit", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.hub.connect(f.other).deposit(0))
        .to.be.revertedWithCustomError(f.hub, "ClerkInvalidAmount")
        .withArgs(0);
    });

    it("reverts with the token's allowance error when the caller never approved the hub", async function () {
      const f = await loadFixture(deployFixture);
      const stranger = await newcomer(f);
      const amount = parseEther("1");
      await expect(f.hub.connect(stranger).deposit(amount))
        .to.be.revertedWithCustomError(f.token, "ERC20InsufficientAllowance")
        .withArgs(await f.hub.getAddress(), 0, amount);
      expect(await f.hub.balanceOf(stranger.address)).to.equal(0n);
    });

    it("refuses a deposit that would overflow the 112-bit balance", async function () {
      const f = await loadFixture(deployFixture);
      const max = 2n ** 112n - 1n;
      await f.token.mint(f.other.address, max);
      await expect(f.hub.connect(f.other).depositFor(f.requester.address, max - INITIAL_DEPOSIT + 1n))
        .to.be.revertedWithCustomError(f.hub, "ClerkBalanceOverflow")
        .withArgs(f.requester.address);
      // Exactly up to the maximum is fine.
      await f.hub.connect(f.other).depositFor(f.requester.address, max - INITIAL_DEPOSIT);
      expect(await f.hub.balanceOf(f.requester.address)).to.equal(max);
      await expect(f.hub.connect(f.requester).deposit(1n))
        .to.be.revertedWithCustomError(f.hub, "ClerkBalanceOverflow")
        .withArgs(f.requester.address);
      await expectSolvent(f);
    });
  });

  describe("depositFor", function () {
    it("credits the named account with the payer's tokens", async function () {
      const f = await loadFixture(deployFixture);
      const beneficiary = await newcomer(f, 16, 0n);
      const amount = parseEther("3");
      const tx = f.hub.connect(f.other).depositFor(beneficiary.address, amount);
      await expect(tx).to.emit(f.hub, "Deposited").withArgs(beneficiary.address, f.other.address, amount);
      await expect(tx).to.changeTokenBalances(f.token, [f.other, beneficiary, f.hub], [-amount, 0n, amount]);
      expect(await f.hub.accountOf(beneficiary.address)).to.deep.equal([amount, 0n]);
      expect(await f.hub.accountOf(f.other.address)).to.deep.equal([0n, 0n]);
      await expectSolvent(f);
    });

    it("lets the beneficiary withdraw what was deposited for it", async function () {
      const f = await loadFixture(deployFixture);
      const beneficiary = await newcomer(f, 16, 0n);
      await f.hub.connect(f.other).depositFor(beneficiary.address, parseEther("3"));
      await expect(f.hub.connect(beneficiary).withdraw(parseEther("3"))).to.changeTokenBalances(
        f.token,
        [beneficiary, f.hub],
        [parseEther("3"), -parseEther("3")],
      );
      await expectSolvent(f);
    });

    it("refuses a zero deposit", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.hub.connect(f.other).depositFor(f.requester.address, 0))
        .to.be.revertedWithCustomError(f.hub, "ClerkInvalidAmount")
        .withArgs(0);
    });
  });

  describe("depositWithPermit", function () {
    it("deposits with a valid permit and no prior approval", async function () {
      const f = await loadFixture(deployFixture);
      const stranger = await newcomer(f);
      const amount = parseEther("12");
      const deadline = await farDeadline();
      const p = await permitSignature(f, stranger.address, amount, deadline);
      const tx = f.hub.connect(stranger).depositWithPermit(amount, deadline, p.v, p.r, p.s);
      await expect(tx).to.emit(f.hub, "Deposited").withArgs(stranger.address, stranger.address, amount);
      await expect(tx).to.changeTokenBalances(f.token, [stranger, f.hub], [-amount, amount]);
      expect(await f.hub.accountOf(stranger.address)).to.deep.equal([amount, 0n]);
      expect(await f.token.nonces(stranger.address)).to.equal(1n);
      expect(await f.token.allowance(stranger.address, await f.hub.getAddress())).to.equal(0n);
      await expectSolvent(f);
    });

    it("still deposits when the permit was already used (front-run) and the allowance is there", async function () {
      const f = await loadFixture(deployFixture);
      const stranger = await newcomer(f);
      const amount = parseEther("12");
      const deadline = await farDeadline();
      const p = await permitSignature(f, stranger.address, amount, deadline);
      // Someone front-runs the permit: the allowance is set, the signature nonce is spent.
      await f.token
        .connect(f.other)
        .permit(stranger.address, await f.hub.getAddress(), amount, deadline, p.v, p.r, p.s);
      expect(await f.token.nonces(stranger.address)).to.equal(1n);
      await expect(f.hub.connect(stranger).depositWithPermit(amount, deadline, p.v, p.r, p.s))
        .to.emit(f.hub, "Deposited")
        .withArgs(stranger.address, stranger.address, amount);
      expect(await f.hub.balanceOf(stranger.address)).to.equal(amount);
      expect(await f.token.allowance(stranger.address, await f.hub.getAddress())).to.equal(0n);
      await expectSolvent(f);
    });

    it("deposits on a prior approval even when the permit is expired", async function () {
      const f = await loadFixture(deployFixture);
      const amount = parseEther("2");
      const deadline = BigInt(await time.latest()) - 1n;
      const p = await permitSignature(f, f.other.address, amount, deadline);
      // The fixture approved the hub for `other`.
      await expect(f.hub.connect(f.other).depositWithPermit(amount, deadline, p.v, p.r, p.s))
        .to.emit(f.hub, "Deposited")
        .withArgs(f.other.address, f.other.address, amount);
      expect(await f.token.nonces(f.other.address)).to.equal(0n);
    });

    it("reverts with the token's allowance error on an expired permit without allowance", async function () {
      const f = await loadFixture(deployFixture);
      const stranger = await newcomer(f);
      const amount = parseEther("12");
      const deadline = BigInt(await time.latest()) - 1n;
      const p = await permitSignature(f, stranger.address, amount, deadline);
      await expect(f.hub.connect(stranger).depositWithPermit(amount, deadline, p.v, p.r, p.s))
        .to.be.revertedWithCustomError(f.token, "ERC20InsufficientAllowance")
        .withArgs(await f.hub.getAddress(), 0, amount);
      expect(await f.hub.balanceOf(stranger.address)).to.equal(0n);
      expect(await f.token.nonces(stranger.address)).to.equal(0n);
    });

    it("does not let a third party spend someone else's permit", async function () {
      const f = await loadFixture(deployFixture);
      const stranger = await newcomer(f);
      const relayer = await newcomer(f, 16);
      const amount = parseEther("12");
      const deadline = await farDeadline();
      const p = await permitSignature(f, stranger.address, amount, deadline);
      // The permit is checked against the caller as owner: it fails, and the relayer has no allowance of its own.
      await expect(f.hub.connect(relayer).depositWithPermit(amount, deadline, p.v, p.r, p.s))
        .to.be.revertedWithCustomError(f.token, "ERC20InsufficientAllowance")
        .withArgs(await f.hub.getAddress(), 0, amount);
      expect(await f.token.balanceOf(stranger.address)).to.equal(INITIAL_TOKENS);
      expect(await f.token.nonces(stranger.address)).to.equal(0n);
    });

    it("refuses a zero deposit", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.hub.connect(f.other).depositWithPermit(0, 0, 27, ZeroHash, ZeroHash))
        .to.be.revertedWithCustomError(f.hub, "ClerkInvalidAmount")
        .withArgs(0);
    });
  });

  describe("withdraw", function () {
    it("sends part of the free balance back to the caller", async function () {
      const f = await loadFixture(deployFixture);
      const amount = parseEther("40");
      const tx = f.hub.connect(f.requester).withdraw(amount);
      await expect(tx).to.emit(f.hub, "Withdrawn").withArgs(f.requester.address, f.requester.address, amount);
      await expect(tx).to.changeTokenBalances(f.token, [f.requester, f.hub], [amount, -amount]);
      expect(await f.hub.accountOf(f.requester.address)).to.deep.equal([INITIAL_DEPOSIT - amount, 0n]);
      await expectSolvent(f);
    });

    it("withdraws the whole free balance down to zero", async function () {
      const f = await loadFixture(deployFixture);
      await f.hub.connect(f.requester).withdraw(INITIAL_DEPOSIT);
      expect(await f.hub.accountOf(f.requester.address)).to.deep.equal([0n, 0n]);
      expect(await f.token.balanceOf(f.requester.address)).to.equal(INITIAL_TOKENS);
      await expectSolvent(f);
    });

    it("refuses to withdraw more than the free balance", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.hub.connect(f.requester).withdraw(INITIAL_DEPOSIT + 1n))
        .to.be.revertedWithCustomError(f.hub, "ClerkInsufficientBalance")
        .withArgs(f.requester.address, INITIAL_DEPOSIT, INITIAL_DEPOSIT + 1n);
    });

    it("refuses a withdrawal from an empty account", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.hub.connect(f.other).withdraw(1n))
        .to.be.revertedWithCustomError(f.hub, "ClerkInsufficientBalance")
        .withArgs(f.other.address, 0, 1n);
    });

    it("never releases frozen funds", async function () {
      const f = await loadFixture(deployFixture);
      const o = await signedOrders(f);
      await f.hub.connect(f.requester).matchOrders(o.app, o.dataset, o.workerpool, o.request);
      const price = PRICES.app + PRICES.dataset + PRICES.workerpool;
      const free = INITIAL_DEPOSIT - price;
      await expect(f.hub.connect(f.requester).withdraw(INITIAL_DEPOSIT))
        .to.be.revertedWithCustomError(f.hub, "ClerkInsufficientBalance")
        .withArgs(f.requester.address, free, INITIAL_DEPOSIT);
      await f.hub.connect(f.requester).withdraw(free);
      expect(await f.hub.accountOf(f.requester.address)).to.deep.equal([0n, price]);
      await expectSolvent(f);
    });

    it("refuses a zero withdrawal", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.hub.connect(f.requester).withdraw(0))
        .to.be.revertedWithCustomError(f.hub, "ClerkInvalidAmount")
        .withArgs(0);
    });
  });

  it("keeps the hub's token balance equal to balances + frozen + kitty through deposits, a match and withdrawals", async function () {
    const f = await loadFixture(deployFixture);
    const stranger = await newcomer(f);
    await expectSolvent(f);
    await f.hub.connect(f.other).deposit(parseEther("9"));
    await expectSolvent(f);
    await f.hub.connect(f.other).depositFor(f.workers[0].address, parseEther("4"));
    await expectSolvent(f);
    const deadline = await farDeadline();
    const p = await permitSignature(f, stranger.address, parseEther("6"), deadline);
    await f.hub.connect(stranger).depositWithPermit(parseEther("6"), deadline, p.v, p.r, p.s);
    await expectSolvent(f);
    const o = await signedOrders(f, { request: { volume: 3n } });
    await f.hub.connect(f.requester).matchOrders(o.app, o.dataset, o.workerpool, o.request);
    await expectSolvent(f);
    await f.hub.connect(f.requester).withdraw(await f.hub.balanceOf(f.requester.address));
    await f.hub.connect(f.other).withdraw(parseEther("9"));
    await f.hub.connect(stranger).withdraw(parseEther("1"));
    await expectSolvent(f);
    // Eight fixture deposits, minus the requester's free balance (its 3 tasks stay frozen), plus 4 and 6 - 1.
    const frozen = (PRICES.app + PRICES.dataset + PRICES.workerpool) * 3n;
    expect(await f.token.balanceOf(await f.hub.getAddress())).to.equal(
      INITIAL_DEPOSIT * 7n + frozen + parseEther("4") + parseEther("5"),
    );
  });
});
