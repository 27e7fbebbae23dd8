/**
 * Asset registries (AppRegistry, DatasetRegistry, WorkerpoolRegistry): registration, views, the workerpool's
 * configuration and how deals pick it up at match time.
 */
import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroAddress, id, parseEther } from "ethers";
import {
  INITIAL_DEPOSIT,
  PRICES,
  SCHEDULER_REWARD_RATIO,
  WORKER_STAKE_RATIO,
  deployFixture,
  Fixture,
  signedOrders,
} from "../helpers/fixture";
import { dealId, hashOrder, signOrder } from "../../sdk/eip712";

describe("Registries", function () {
  describe("AppRegistry", function () {
    it("registers apps with sequential ids from 1 and mints each token to the given owner", async function () {
      const f = await loadFixture(deployFixture);
      // The fixture registered app 1 for the app owner.
      expect(await f.apps.ownerOf(1)).to.equal(f.appOwner.address);
      expect(await f.apps.count()).to.equal(1n);
      expect(
        await f.apps.connect(f.other).register.staticCall(f.workers[0].address, "n", "wasi", "u", id("c")),
      ).to.equal(2n);
      const tx = f.apps.connect(f.other).register(f.workers[0].address, "sql app", "sql", "https://x/app", id("sql"));
      await expect(tx)
        .to.emit(f.apps, "AppRegistered")
        .withArgs(2n, f.workers[0].address, "sql app", "sql", "https://x/app", id("sql"));
      await expect(tx).to.emit(f.apps, "Transfer").withArgs(ZeroAddress, f.workers[0].address, 2n);
      await f.apps.register(f.workers[1].address, "third", "wasi", "file://third.wasm", id("third"));
      expect(await f.apps.count()).to.equal(3n);
      expect(await f.apps.ownerOf(2)).to.equal(f.workers[0].address);
      expect(await f.apps.ownerOf(3)).to.equal(f.workers[1].address);
      expect(await f.apps.balanceOf(f.workers[0].address)).to.equal(1n);
      const app = await f.apps.app(2);
      expect([app.name, app.runtime, app.uri, app.checksum]).to.deep.equal([
        "sql app",
        "sql",
        "https://x/app",
        id("sql"),
      ]);
    });

    it("describes the fixture's app", async function () {
      const f = await loadFixture(deployFixture);
      const app = await f.apps.app(1);
      expect([app.name, app.runtime, app.uri, app.checksum]).to.deep.equal([
        "echo",
        "wasi",
        "file://apps/echo.wasm",
        id("echo"),
      ]);
    });

    it("reports the owner, or the zero address for an unknown id", async function () {
      const f = await loadFixture(deployFixture);
      expect(await f.apps.ownerOrZero(1)).to.equal(f.appOwner.address);
      expect(await f.apps.ownerOrZero(0)).to.equal(ZeroAddress);
      expect(await f.apps.ownerOrZero(2)).to.equal(ZeroAddress);
    });

    it("refuses an empty runtime", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.apps.register(f.other.address, "n", "", "u", id("c"))).to.be.revertedWithCustomError(
        f.apps,
        "AppRegistryEmptyRuntime",
      );
      expect(await f.apps.count()).to.equal(1n);
    });

    it("refuses to describe id 0 or an id not registered yet", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.apps.app(0)).to.be.revertedWithCustomError(f.apps, "RegistryUnknownAsset").withArgs(0);
      await expect(f.apps.app(2)).to.be.revertedWithCustomError(f.apps, "RegistryUnknownAsset").withArgs(2);
    });

    it("refuses to mint to a contract that cannot hold ERC-721 tokens", async function () {
      const f = await loadFixture(deployFixture);
      const hub = await f.hub.getAddress();
      await expect(f.apps.register(hub, "n", "wasi", "u", id("c")))
        .to.be.revertedWithCustomError(f.apps, "ERC721InvalidReceiver")
        .withArgs(hub);
    });

    it("makes the new owner of a transferred app the signer of its orders", async function () {
      const f = await loadFixture(deployFixture);
      await f.apps.connect(f.appOwner).transferFrom(f.appOwner.address, f.other.address, 1);
      const stale = await signedOrders(f);
      await expect(f.hub.connect(f.requester).matchOrders(stale.app, stale.dataset, stale.workerpool, stale.request))
        .to.be.revertedWithCustomError(f.hub, "ClerkInvalidSignature")
        .withArgs(hashOrder(f.domain, "AppOrder", stale.app), f.other.address);
      const app = { ...stale.app, sign: "0x" };
      await f.hub.connect(f.other).presignAppOrder(app);
      await expect(f.hub.connect(f.requester).matchOrders(app, stale.dataset, stale.workerpool, stale.request)).to.emit(
        f.hub,
        "DealMatched",
      );
    });
  });

  describe("DatasetRegistry", function () {
    it("registers datasets with sequential ids and mints each token to the given owner", async function () {
      const f = await loadFixture(deployFixture);
      expect(await f.datasets.ownerOf(1)).to.equal(f.datasetOwner.address);
      expect(await f.datasets.count()).to.equal(1n);
      const tx = f.datasets.connect(f.other).register(f.workers[0].address, "logs", "https://x/logs.csv", id("logs"));
      await expect(tx)
        .to.emit(f.datasets, "DatasetRegistered")
        .withArgs(2n, f.workers[0].address, "logs", "https://x/logs.csv", id("logs"));
      await expect(tx).to.emit(f.datasets, "Transfer").withArgs(ZeroAddress, f.workers[0].address, 2n);
      expect(await f.datasets.count()).to.equal(2n);
      expect(await f.datasets.ownerOf(2)).to.equal(f.workers[0].address);
      expect(await f.datasets.ownerOrZero(2)).to.equal(f.workers[0].address);
      const d = await f.datasets.dataset(2);
      expect([d.name, d.uri, d.checksum]).to.deep.equal(["logs", "https://x/logs.csv", id("logs")]);
      const first = await f.datasets.dataset(1);
      expect([first.name, first.uri, first.checksum]).to.deep.equal([
        "customers",
        "file://data/customers.csv",
        id("customers"),
      ]);
    });

    it("reports the zero address as the owner of an unknown id", async function () {
      const f = await loadFixture(deployFixture);
      expect(await f.datasets.ownerOrZero(0)).to.equal(ZeroAddress);
      expect(await f.datasets.ownerOrZero(7)).to.equal(ZeroAddress);
    });

    it("refuses to describe id 0 or an id not registered yet", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.datasets.dataset(0)).to.be.revertedWithCustomError(f.datasets, "RegistryUnknownAsset").withArgs(0);
      await expect(f.datasets.dataset(2)).to.be.revertedWithCustomError(f.datasets, "RegistryUnknownAsset").withArgs(2);
    });
  });

  describe("WorkerpoolRegistry", function () {
    it("registers pools with sequential ids, mints the token and announces the configuration", async function () {
      const f = await loadFixture(deployFixture);
      expect(await f.workerpools.ownerOf(1)).to.equal(f.poolOwner.address);
      expect(await f.workerpools.count()).to.equal(1n);
      expect(await f.workerpools.register.staticCall(f.other.address, "second", f.workers[0].address, 100, 0)).to.equal(
        2n,
      );
      const tx = f.workerpools.register(f.other.address, "second", f.workers[0].address, 100, 0);
      await expect(tx)
        .to.emit(f.workerpools, "WorkerpoolRegistered")
        .withArgs(2n, f.other.address, f.workers[0].address, "second");
      await expect(tx).to.emit(f.workerpools, "WorkerpoolConfigured").withArgs(2n, f.workers[0].address, 100, 0);
      // Registered by the deployer, not by the scheduler: no consent yet.
      await expect(tx).to.emit(f.workerpools, "SchedulerConsentChanged").withArgs(2n, f.workers[0].address, false);
      await expect(tx).to.emit(f.workerpools, "Transfer").withArgs(ZeroAddress, f.other.address, 2n);
      expect(await f.workerpools.count()).to.equal(2n);
      expect(await f.workerpools.ownerOf(2)).to.equal(f.other.address);
      const pool = await f.workerpools.workerpool(2);
      expect([
        pool.scheduler,
        pool.workerStakeRatio,
        pool.schedulerRewardRatio,
        pool.schedulerConsent,
        pool.description,
      ]).to.deep.equal([f.workers[0].address, 100n, 0n, false, "second"]);
    });

    it("describes the fixture's pool and its deal terms", async function () {
      const f = await loadFixture(deployFixture);
      const pool = await f.workerpools.workerpool(1);
      // The fixture's scheduler consented after the pool owner registered the pool.
      expect([
        pool.scheduler,
        pool.workerStakeRatio,
        pool.schedulerRewardRatio,
        pool.schedulerConsent,
        pool.description,
      ]).to.deep.equal([f.scheduler.address, WORKER_STAKE_RATIO, SCHEDULER_REWARD_RATIO, true, "test pool"]);
      expect(await f.workerpools.dealTerms(1)).to.deep.equal([
        f.poolOwner.address,
        f.scheduler.address,
        WORKER_STAKE_RATIO,
        SCHEDULER_REWARD_RATIO,
        true,
      ]);
    });

    it("reports the zero address as the owner of an unknown id", async function () {
      const f = await loadFixture(deployFixture);
      expect(await f.workerpools.ownerOrZero(0)).to.equal(ZeroAddress);
      expect(await f.workerpools.ownerOrZero(2)).to.equal(ZeroAddress);
    });

    it("refuses to describe, or give deal terms of, id 0 or an unknown id", async function () {
      const f = await loadFixture(deployFixture);
      for (const unknown of [0n, 2n]) {
        await expect(f.workerpools.workerpool(unknown))
          .to.be.revertedWithCustomError(f.workerpools, "RegistryUnknownAsset")
          .withArgs(unknown);
        await expect(f.workerpools.dealTerms(unknown))
          .to.be.revertedWithCustomError(f.workerpools, "RegistryUnknownAsset")
          .withArgs(unknown);
      }
    });

    it("refuses a zero scheduler", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.workerpools.register(f.other.address, "p", ZeroAddress, 30, 10)).to.be.revertedWithCustomError(
        f.workerpools,
        "WorkerpoolRegistryZeroScheduler",
      );
    });

    it("refuses a worker stake ratio above 100", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.workerpools.register(f.other.address, "p", f.other.address, 101, 10))
        .to.be.revertedWithCustomError(f.workerpools, "WorkerpoolRegistryInvalidRatio")
        .withArgs(101);
      await expect(f.workerpools.register(f.other.address, "p", f.other.address, 255, 10))
        .to.be.revertedWithCustomError(f.workerpools, "WorkerpoolRegistryInvalidRatio")
        .withArgs(255);
    });

    it("refuses a scheduler reward ratio above 100", async function () {
      const f = await loadFixture(deployFixture);
      await expect(f.workerpools.register(f.other.address, "p", f.other.address, 30, 101))
        .to.be.revertedWithCustomError(f.workerpools, "WorkerpoolRegistryInvalidRatio")
        .withArgs(101);
    });

    it("accepts ratios of exactly 0 and 100", async function () {
      const f = await loadFixture(deployFixture);
      await f.workerpools.register(f.other.address, "p", f.other.address, 0, 100);
      // Registered by the deployer on `other`'s behalf: `other` has not consented.
      expect(await f.workerpools.dealTerms(2)).to.deep.equal([f.other.address, f.other.address, 0n, 100n, false]);
    });

    describe("configure", function () {
      it("lets the pool owner change the scheduler and ratios", async function () {
        const f = await loadFixture(deployFixture);
        await expect(f.workerpools.connect(f.poolOwner).configure(1, f.other.address, 50, 20))
          .to.emit(f.workerpools, "WorkerpoolConfigured")
          .withArgs(1n, f.other.address, 50, 20);
        const pool = await f.workerpools.workerpool(1);
        // A new scheduler that is not the caller has not consented yet.
        expect([
          pool.scheduler,
          pool.workerStakeRatio,
          pool.schedulerRewardRatio,
          pool.schedulerConsent,
          pool.description,
        ]).to.deep.equal([f.other.address, 50n, 20n, false, "test pool"]);
        expect(await f.workerpools.dealTerms(1)).to.deep.equal([
          f.poolOwner.address,
          f.other.address,
          50n,
          20n,
          false,
        ]);
      });

      it("refuses anyone but the pool owner, the scheduler included", async function () {
        const f = await loadFixture(deployFixture);
        for (const caller of [f.scheduler, f.other, f.owner]) {
          await expect(f.workerpools.connect(caller).configure(1, caller.address, 50, 20))
            .to.be.revertedWithCustomError(f.workerpools, "RegistryNotAssetOwner")
            .withArgs(1n, caller.address);
        }
      });

      it("follows the pool token: after a transfer only the new owner configures", async function () {
        const f = await loadFixture(deployFixture);
        await f.workerpools.connect(f.poolOwner).transferFrom(f.poolOwner.address, f.other.address, 1);
        await expect(f.workerpools.connect(f.poolOwner).configure(1, f.scheduler.address, 50, 20))
          .to.be.revertedWithCustomError(f.workerpools, "RegistryNotAssetOwner")
          .withArgs(1n, f.poolOwner.address);
        await f.workerpools.connect(f.other).configure(1, f.scheduler.address, 50, 20);
        // The transfer reset the scheduler's consent; keeping the scheduler does not restore it.
        expect(await f.workerpools.dealTerms(1)).to.deep.equal([
          f.other.address,
          f.scheduler.address,
          50n,
          20n,
          false,
        ]);
      });

      it("refuses an unknown id", async function () {
        const f = await loadFixture(deployFixture);
        await expect(f.workerpools.connect(f.poolOwner).configure(2, f.scheduler.address, 50, 20))
          .to.be.revertedWithCustomError(f.workerpools, "RegistryUnknownAsset")
          .withArgs(2n);
        await expect(f.workerpools.connect(f.poolOwner).configure(0, f.scheduler.address, 50, 20))
          .to.be.revertedWithCustomError(f.workerpools, "RegistryUnknownAsset")
          .withArgs(0n);
      });

      it("refuses a zero scheduler or a ratio above 100", async function () {
        const f = await loadFixture(deployFixture);
        const pools = f.workerpools.connect(f.poolOwner);
        await expect(pools.configure(1, ZeroAddress, 30, 10)).to.be.revertedWithCustomError(
          pools,
          "WorkerpoolRegistryZeroScheduler",
        );
        await expect(pools.configure(1, f.scheduler.address, 101, 10))
          .to.be.revertedWithCustomError(pools, "WorkerpoolRegistryInvalidRatio")
          .withArgs(101);
        await expect(pools.configure(1, f.scheduler.address, 30, 150))
          .to.be.revertedWithCustomError(pools, "WorkerpoolRegistryInvalidRatio")
          .withArgs(150);
        expect(await f.workerpools.dealTerms(1)).to.deep.equal([
          f.poolOwner.address,
          f.scheduler.address,
          WORKER_STAKE_RATIO,
          SCHEDULER_REWARD_RATIO,
          true,
        ]);
      });

      it("applies to deals matched afterwards while earlier deals keep their terms", async function () {
        const f = await loadFixture(deployFixture);
        const before = await signedOrders(f);
        await f.hub.connect(f.requester).matchOrders(before.app, before.dataset, before.workerpool, before.request);

        // The new scheduler needs funds for its stake.
        await f.hub.connect(f.other).deposit(INITIAL_DEPOSIT);
        await f.workerpools.connect(f.poolOwner).configure(1, f.other.address, 50, 20);
        // The new scheduler must consent before the pool's orders match again.
        await f.workerpools.connect(f.other).setSchedulerConsent(1, true);
        const after = await signedOrders(f);
        await f.hub.connect(f.requester).matchOrders(after.app, after.dataset, after.workerpool, after.request);

        const firstId = dealId(hashOrder(f.domain, "RequestOrder", before.request));
        const secondId = dealId(hashOrder(f.domain, "RequestOrder", after.request));
        const first = await f.hub.viewDeal(firstId);
        expect([first.scheduler, first.workerStakeRatio, first.schedulerRewardRatio]).to.deep.equal([
          f.scheduler.address,
          WORKER_STAKE_RATIO,
          SCHEDULER_REWARD_RATIO,
        ]);
        const second = await f.hub.viewDeal(secondId);
        expect([second.scheduler, second.workerStakeRatio, second.schedulerRewardRatio]).to.deep.equal([
          f.other.address,
          50n,
          20n,
        ]);
        expect(await f.hub.workerStakeOf(firstId)).to.equal((PRICES.workerpool * WORKER_STAKE_RATIO) / 100n);
        expect(await f.hub.workerStakeOf(secondId)).to.equal((PRICES.workerpool * 50n) / 100n);
        // Each deal's scheduler stakes 30% of the pool price per task.
        const stake = (PRICES.workerpool * 30n) / 100n;
        expect(await f.hub.frozenOf(f.scheduler.address)).to.equal(stake);
        expect(await f.hub.frozenOf(f.other.address)).to.equal(stake);
      });

      it("never lets a worker stake fall below the protocol minimum, even with ratio 0", async function () {
        const f = await loadFixture(deployFixture);
        await f.workerpools.connect(f.poolOwner).configure(1, f.scheduler.address, 0, 0);
        const o = await signedOrders(f);
        await f.hub.connect(f.requester).matchOrders(o.app, o.dataset, o.workerpool, o.request);
        expect(await f.hub.workerStakeOf(dealId(hashOrder(f.domain, "RequestOrder", o.request)))).to.equal(
          parseEther("0.1"),
        );
      });
    });

    describe("scheduler consent", function () {
      /** Matches fresh default orders (pool 1) for the requester. */
      async function matchPool1(f: Fixture) {
        const o = await signedOrders(f);
        return f.hub.connect(f.requester).matchOrders(o.app, o.dataset, o.workerpool, o.request);
      }

      it("records the consent at once when the scheduler registers the pool itself", async function () {
        const f = await loadFixture(deployFixture);
        const tx = f.workerpools.connect(f.other).register(f.poolOwner.address, "own", f.other.address, 30, 10);
        await expect(tx).to.emit(f.workerpools, "SchedulerConsentChanged").withArgs(2n, f.other.address, true);
        expect(await f.workerpools.dealTerms(2)).to.deep.equal([f.poolOwner.address, f.other.address, 30n, 10n, true]);
        expect((await f.workerpools.workerpool(2)).schedulerConsent).to.equal(true);
      });

      it("lets the scheduler named by the pool owner give its consent, announcing it", async function () {
        const f = await loadFixture(deployFixture);
        await f.workerpools.connect(f.poolOwner).register(f.poolOwner.address, "p2", f.other.address, 30, 10);
        expect(await f.workerpools.dealTerms(2)).to.deep.equal([
          f.poolOwner.address,
          f.other.address,
          30n,
          10n,
          false,
        ]);
        await expect(f.workerpools.connect(f.other).setSchedulerConsent(2, true))
          .to.emit(f.workerpools, "SchedulerConsentChanged")
          .withArgs(2n, f.other.address, true);
        expect(await f.workerpools.dealTerms(2)).to.deep.equal([f.poolOwner.address, f.other.address, 30n, 10n, true]);
        expect((await f.workerpools.workerpool(2)).schedulerConsent).to.equal(true);
        // Pool 1 is untouched.
        expect((await f.workerpools.dealTerms(1))[4]).to.equal(true);
      });

      it("lets the scheduler withdraw its consent, after which the pool's orders no longer match", async function () {
        const f = await loadFixture(deployFixture);
        await expect(f.workerpools.connect(f.scheduler).setSchedulerConsent(1, false))
          .to.emit(f.workerpools, "SchedulerConsentChanged")
          .withArgs(1n, f.scheduler.address, false);
        expect(await f.workerpools.dealTerms(1)).to.deep.equal([
          f.poolOwner.address,
          f.scheduler.address,
          WORKER_STAKE_RATIO,
          SCHEDULER_REWARD_RATIO,
          false,
        ]);
        expect((await f.workerpools.workerpool(1)).schedulerConsent).to.equal(false);
        await expect(matchPool1(f))
          .to.be.revertedWithCustomError(f.hub, "ClerkSchedulerWithoutConsent")
          .withArgs(1n, f.scheduler.address);
        // Consenting again makes the pool usable again.
        await expect(f.workerpools.connect(f.scheduler).setSchedulerConsent(1, true))
          .to.emit(f.workerpools, "SchedulerConsentChanged")
          .withArgs(1n, f.scheduler.address, true);
        await expect(matchPool1(f)).to.emit(f.hub, "DealMatched");
      });

      it("refuses consent from anyone but the pool's scheduler, the pool owner included", async function () {
        const f = await loadFixture(deployFixture);
        for (const caller of [f.poolOwner, f.other, f.owner, f.requester]) {
          for (const consent of [true, false]) {
            await expect(f.workerpools.connect(caller).setSchedulerConsent(1, consent))
              .to.be.revertedWithCustomError(f.workerpools, "WorkerpoolRegistryNotScheduler")
              .withArgs(1n, caller.address);
          }
        }
        // The scheduler of pool 1 cannot consent for pool 2, which names someone else.
        await f.workerpools.connect(f.poolOwner).register(f.poolOwner.address, "p2", f.other.address, 30, 10);
        await expect(f.workerpools.connect(f.scheduler).setSchedulerConsent(2, true))
          .to.be.revertedWithCustomError(f.workerpools, "WorkerpoolRegistryNotScheduler")
          .withArgs(2n, f.scheduler.address);
        expect((await f.workerpools.dealTerms(1))[4]).to.equal(true);
        expect((await f.workerpools.dealTerms(2))[4]).to.equal(false);
      });

      it("refuses consent for id 0 or an unknown id", async function () {
        const f = await loadFixture(deployFixture);
        for (const unknown of [0n, 2n]) {
          await expect(f.workerpools.connect(f.scheduler).setSchedulerConsent(unknown, true))
            .to.be.revertedWithCustomError(f.workerpools, "RegistryUnknownAsset")
            .withArgs(unknown);
        }
      });

      it("resets the consent when configure names a new scheduler", async function () {
        const f = await loadFixture(deployFixture);
        const tx = f.workerpools.connect(f.poolOwner).configure(1, f.other.address, 30, 10);
        await expect(tx).to.emit(f.workerpools, "SchedulerConsentChanged").withArgs(1n, f.other.address, false);
        await expect(tx).to.emit(f.workerpools, "WorkerpoolConfigured").withArgs(1n, f.other.address, 30, 10);
        expect(await f.workerpools.dealTerms(1)).to.deep.equal([f.poolOwner.address, f.other.address, 30n, 10n, false]);
        await expect(matchPool1(f))
          .to.be.revertedWithCustomError(f.hub, "ClerkSchedulerWithoutConsent")
          .withArgs(1n, f.other.address);
        // The former scheduler no longer speaks for the pool.
        await expect(f.workerpools.connect(f.scheduler).setSchedulerConsent(1, true))
          .to.be.revertedWithCustomError(f.workerpools, "WorkerpoolRegistryNotScheduler")
          .withArgs(1n, f.scheduler.address);
        // Naming the former scheduler again does not bring its old consent back.
        await expect(f.workerpools.connect(f.poolOwner).configure(1, f.scheduler.address, 30, 10))
          .to.emit(f.workerpools, "SchedulerConsentChanged")
          .withArgs(1n, f.scheduler.address, false);
        expect((await f.workerpools.dealTerms(1))[4]).to.equal(false);
      });

      it("records the consent at once when the pool owner names itself scheduler", async function () {
        const f = await loadFixture(deployFixture);
        await expect(f.workerpools.connect(f.poolOwner).configure(1, f.poolOwner.address, 30, 10))
          .to.emit(f.workerpools, "SchedulerConsentChanged")
          .withArgs(1n, f.poolOwner.address, true);
        expect(await f.workerpools.dealTerms(1)).to.deep.equal([
          f.poolOwner.address,
          f.poolOwner.address,
          30n,
          10n,
          true,
        ]);
      });

      it("keeps the consent when configure keeps the scheduler", async function () {
        const f = await loadFixture(deployFixture);
        await expect(f.workerpools.connect(f.poolOwner).configure(1, f.scheduler.address, 50, 20)).not.to.emit(
          f.workerpools,
          "SchedulerConsentChanged",
        );
        expect(await f.workerpools.dealTerms(1)).to.deep.equal([
          f.poolOwner.address,
          f.scheduler.address,
          50n,
          20n,
          true,
        ]);
        await expect(matchPool1(f)).to.emit(f.hub, "DealMatched");
        // A withdrawn consent stays withdrawn too.
        await f.workerpools.connect(f.scheduler).setSchedulerConsent(1, false);
        await expect(f.workerpools.connect(f.poolOwner).configure(1, f.scheduler.address, 40, 5)).not.to.emit(
          f.workerpools,
          "SchedulerConsentChanged",
        );
        expect(await f.workerpools.dealTerms(1)).to.deep.equal([
          f.poolOwner.address,
          f.scheduler.address,
          40n,
          5n,
          false,
        ]);
      });

      it("resets the consent when the pool token changes hands", async function () {
        const f = await loadFixture(deployFixture);
        await expect(f.workerpools.connect(f.poolOwner).transferFrom(f.poolOwner.address, f.other.address, 1))
          .to.emit(f.workerpools, "SchedulerConsentChanged")
          .withArgs(1n, f.scheduler.address, false);
        expect(await f.workerpools.dealTerms(1)).to.deep.equal([
          f.other.address,
          f.scheduler.address,
          WORKER_STAKE_RATIO,
          SCHEDULER_REWARD_RATIO,
          false,
        ]);
        // The new owner's orders do not match until the scheduler agrees to serve it.
        const o = await signedOrders(f);
        const pool = await signOrder(f.other, f.domain, "WorkerpoolOrder", o.workerpool);
        await expect(f.hub.connect(f.requester).matchOrders(o.app, o.dataset, pool, o.request))
          .to.be.revertedWithCustomError(f.hub, "ClerkSchedulerWithoutConsent")
          .withArgs(1n, f.scheduler.address);
        await f.workerpools.connect(f.scheduler).setSchedulerConsent(1, true);
        await expect(f.hub.connect(f.requester).matchOrders(o.app, o.dataset, pool, o.request)).to.emit(
          f.hub,
          "DealMatched",
        );
        // A safe transfer resets it as well.
        await expect(
          f.workerpools
            .connect(f.other)
            ["safeTransferFrom(address,address,uint256)"](f.other.address, f.poolOwner.address, 1),
        )
          .to.emit(f.workerpools, "SchedulerConsentChanged")
          .withArgs(1n, f.scheduler.address, false);
        expect((await f.workerpools.dealTerms(1))[4]).to.equal(false);
      });

      it("announces nothing on a transfer when there is no consent to reset", async function () {
        const f = await loadFixture(deployFixture);
        await f.workerpools.connect(f.scheduler).setSchedulerConsent(1, false);
        await expect(
          f.workerpools.connect(f.poolOwner).transferFrom(f.poolOwner.address, f.other.address, 1),
        ).not.to.emit(f.workerpools, "SchedulerConsentChanged");
        expect(await f.workerpools.ownerOf(1)).to.equal(f.other.address);
        expect((await f.workerpools.dealTerms(1))[4]).to.equal(false);
      });

      it("keeps the consent on a transfer of the pool to its current owner", async function () {
        const f = await loadFixture(deployFixture);
        await expect(
          f.workerpools.connect(f.poolOwner).transferFrom(f.poolOwner.address, f.poolOwner.address, 1),
        ).not.to.emit(f.workerpools, "SchedulerConsentChanged");
        expect(await f.workerpools.dealTerms(1)).to.deep.equal([
          f.poolOwner.address,
          f.scheduler.address,
          WORKER_STAKE_RATIO,
          SCHEDULER_REWARD_RATIO,
          true,
        ]);
      });
    });
  });

  it("are independent: each registry counts its own ids", async function () {
    const f = await loadFixture(deployFixture);
    await f.apps.register(f.other.address, "a", "wasi", "u", id("a"));
    await f.apps.register(f.other.address, "b", "wasi", "u", id("b"));
    await f.datasets.register(f.other.address, "d", "u", id("d"));
    expect([await f.apps.count(), await f.datasets.count(), await f.workerpools.count()]).to.deep.equal([3n, 2n, 1n]);
    expect(await f.apps.name()).to.equal("Concord App");
    expect(await f.datasets.symbol()).to.equal("CDATA");
    expect(await f.workerpools.name()).to.equal("Concord Workerpool");
  });
});
