/**
 * EthersChainClient against a real local chain: reads decoded into plain types, a deal matched and walked through
 * relayed contributions, relayed reveals and finalization (with and without a callback), claims after the deadline,
 * reverts surfaced as ChainError with the custom error, and the sender's nonce management under concurrency,
 * external use of the key and flaky transport.
 */
import { expect } from "chai";
import { JsonRpcProvider, Network, hexlify, id, keccak256, makeError, toUtf8Bytes } from "ethers";
import { ResultStoreConsumer__factory } from "../../../typechain-types";
import { matchGasLimit, type ChainClientOptions } from "../../../scheduler/chain/client";
import { ChainError } from "../../../scheduler/chain/errors";
import { dealId as dealIdOf } from "../../../sdk/eip712";
import { authorizationSignature, commitment } from "../../../sdk/orders";
import {
  PRICES,
  TIMEREF,
  WORKER_STAKE,
  World,
  contributions,
  increaseTime,
  matchDeal,
  orders,
  recordingLogger,
  reveals,
  startWorld,
  taskIdOf,
} from "./world";

const RESULTS = hexlify(toUtf8Bytes("http://127.0.0.1/results/1#digest"));

/** Runs `fn`, expecting a ChainError. */
async function chainErrorOf(fn: () => Promise<unknown>): Promise<ChainError> {
  try {
    await fn();
  } catch (e) {
    expect(e).to.be.instanceOf(ChainError);
    return e as ChainError;
  }
  throw new Error("expected a ChainError, got success");
}

describe("scheduler chain client", function () {
  this.timeout(120_000);
  let w: World;

  before(async function () {
    w = await startWorld();
  });

  after(async function () {
    await w?.stop();
  });

  describe("reads", function () {
    it("reads registry entries, a category and an escrow account; unknown ids are null", async function () {
      expect(await w.client.app(1)).to.deep.equal({
        id: 1n,
        name: "echo",
        runtime: "wasi",
        uri: "file:///apps/echo.wasm",
        checksum: id("echo"),
      });
      expect(await w.client.dataset(1n)).to.deep.include({
        name: "customers",
        uri: "file:///data/customers.csv",
        checksum: id("customers"),
      });
      expect(await w.client.workerpool(1)).to.deep.include({
        owner: w.poolOwner.address,
        scheduler: w.scheduler.address,
        workerStakeRatio: 30,
        schedulerRewardRatio: 10,
        schedulerConsent: true,
      });
      expect(await w.client.category(0)).to.deep.equal({ id: 0, name: "XS", timeref: TIMEREF });
      expect(await w.client.app(99)).to.equal(null);
      expect(await w.client.dataset(99)).to.equal(null);
      expect(await w.client.workerpool(99)).to.equal(null);
      expect(await w.client.category(99)).to.equal(null);
      const account = await w.client.accountOf(w.workers[0].address);
      expect(account.balance > 0n).to.equal(true);
      expect(account.frozen).to.equal(0n);
      expect(await w.client.viewDeal(`0x${"00".repeat(31)}ff`)).to.equal(null);
      expect((await w.client.viewTask(id("no such task"))).status).to.equal("UNSET");
    });

    it("canMatch says ok for matching orders and decodes the first reason otherwise", async function () {
      const good = await orders(w);
      expect(await w.client.canMatch(good.app, good.dataset, good.workerpool, good.request)).to.deep.equal({
        ok: true,
      });
      const cheap = await orders(w, { appmaxprice: PRICES.app - 1n });
      const check = await w.client.canMatch(cheap.app, cheap.dataset, cheap.workerpool, cheap.request);
      expect(check.ok).to.equal(false);
      if (check.ok) return;
      expect(check.reason?.name).to.equal("ClerkPriceTooHigh");
      expect(check.reason?.named).to.deep.equal({ kind: 0n, price: PRICES.app, maxPrice: PRICES.app - 1n });
    });

    it("matchOrders refused by its gas estimate gives canMatch's reason, with nothing sent (the matcher's precheck: false)", async function () {
      const cheap = await orders(w, { appmaxprice: PRICES.app - 1n });
      const provider = countingProvider(w);
      const client = w.newClient({}, provider.provider);
      const e = await chainErrorOf(() => client.matchOrders(cheap.app, cheap.dataset, cheap.workerpool, cheap.request));
      expect(e.code).to.equal("REVERTED");
      expect(e.details.txHash).to.equal(undefined);
      expect(e.revert?.name).to.equal("ClerkPriceTooHigh");
      expect(e.revert?.named).to.deep.equal({ kind: 0n, price: PRICES.app, maxPrice: PRICES.app - 1n });
      expect(provider.calls.eth_sendRawTransaction ?? 0).to.equal(0);
      provider.provider.destroy();
    });
  });

  describe("deals and tasks", function () {
    it("matches a deal and reads it back with its terms (params, category, beneficiary, stakes)", async function () {
      const before = await w.client.accountOf(w.scheduler.address);
      const m = await matchDeal(w, { trust: 3, volume: 2, params: '{"args":["x"]}' });
      expect(m.volume).to.equal(2);
      expect(m.events.map((e) => e.name)).to.deep.equal(["DealMatched"]);
      const terms = await w.client.dealTerms(m.dealId);
      expect(terms).to.deep.include({
        dealId: m.dealId,
        requester: w.requester.address,
        scheduler: w.scheduler.address,
        callback: null,
        app: 1n,
        dataset: 1n,
        volume: 2,
        trust: 3,
        quorum: 3,
        timeref: TIMEREF,
        params: '{"args":["x"]}',
        beneficiary: w.requester.address,
        workerpool: 1n,
        category: 0,
        matchedBlock: m.blockNumber,
        matchedTx: m.hash,
      });
      expect(terms!.finalDeadline).to.equal(terms!.startTime + 10 * TIMEREF);
      // The hint finds the event in one block.
      expect(await w.client.dealTerms(m.dealId, { blockNumber: m.blockNumber })).to.deep.equal(terms);
      expect(await w.client.workerStakeOf(m.dealId)).to.equal(WORKER_STAKE);
      const after = await w.client.accountOf(w.scheduler.address);
      expect(after.frozen - before.frozen).to.equal(2n * (await w.client.schedulerStakeOf(m.dealId)));
    });

    it("relays three workers' contributions, then their reveals, and finalizes without a callback", async function () {
      const m = await matchDeal(w, { trust: 3 });
      const init = await w.client.initialize(m.dealId, 0);
      const taskId = taskIdOf(m.dealId, 0);
      expect(init.taskId).to.equal(taskId);
      expect((await w.client.viewTask(taskId)).status).to.equal("ACTIVE");

      const digest = id("result");
      const committed = await w.client.contributeBatch(await contributions(w, m.dealId, 0, digest));
      expect(committed.events.map((e) => e.name)).to.deep.equal([
        "ContributionCommitted",
        "ContributionCommitted",
        "ContributionCommitted",
        "ConsensusReached",
      ]);
      const task = await w.client.viewTask(taskId);
      expect(task).to.deep.include({
        status: "REVEALING",
        contributorCount: 3,
        winnerCount: 3,
        consensusHash: commitment(w.workers[0].address, taskId, digest).resultHash,
      });
      expect(await w.client.contributorsOf(taskId)).to.deep.equal(w.workers.map((x) => x.address));
      expect((await w.client.viewContribution(taskId, w.workers[1].address)).status).to.equal("CONTRIBUTED");

      const revealed = await w.client.revealBatch(await reveals(w, taskId, digest));
      expect(revealed.events.map((e) => e.name)).to.deep.equal([
        "ContributionRevealed",
        "ContributionRevealed",
        "ContributionRevealed",
      ]);

      const fin = await w.client.finalize(taskId, RESULTS);
      expect(fin.resultDigest).to.equal(digest);
      expect(fin.callbackFailed).to.equal(false);
      expect(fin.events.map((e) => e.name)).to.deep.equal(["TaskFinalized"]);
      expect(await w.client.viewTask(taskId)).to.deep.include({
        status: "COMPLETED",
        revealCount: 3,
        resultDigest: digest,
      });
    });

    it("finalizes a callback deal: the consumer receives the callback data", async function () {
      const consumer = await new ResultStoreConsumer__factory(w.other).deploy(w.chain.deployment.hub);
      await consumer.waitForDeployment();
      const callback = await consumer.getAddress();
      const m = await matchDeal(w, { trust: 3, callback });
      expect((await w.client.viewDeal(m.dealId))?.callback).to.equal(callback);

      const taskId = taskIdOf(m.dealId, 0);
      const callbackData = hexlify(toUtf8Bytes('{"answer":42}'));
      const digest = keccak256(callbackData);
      await w.client.contributeBatch(await contributions(w, m.dealId, 0, digest)); // initializes lazily
      await w.client.revealBatch(await reveals(w, taskId, digest));
      const fin = await w.client.finalize(taskId, RESULTS, callbackData);
      expect(fin.callbackFailed).to.equal(false);
      expect(await consumer.results(taskId)).to.equal(callbackData);
      expect(await consumer.received()).to.equal(1n);
    });

    it("signs authorizations a worker can contribute with", async function () {
      const m = await matchDeal(w, { trust: 1 });
      const taskId = taskIdOf(m.dealId, 0);
      const worker = w.workers[2];
      const authorization = await w.client.signAuthorization(worker.address, taskId);
      expect(authorization).to.equal(await authorizationSignature(w.scheduler, w.domain, worker.address, taskId));
      const c = commitment(worker.address, taskId, id("alone"));
      await (
        await w.chain.hub.connect(worker).contribute(m.dealId, 0, c.resultHash, c.resultSeal, authorization)
      ).wait();
      expect((await w.client.viewTask(taskId)).status).to.equal("REVEALING");
    });
  });

  describe("reverts", function () {
    it("refuses to finalize while reveals are pending: ChainError REVERTED HubRevealsPending with its args", async function () {
      const m = await matchDeal(w, { trust: 3 });
      const taskId = taskIdOf(m.dealId, 0);
      const digest = id("pending");
      await w.client.contributeBatch(await contributions(w, m.dealId, 0, digest));
      await w.client.revealBatch(await reveals(w, taskId, digest, w.workers.slice(0, 1)));

      const e = await chainErrorOf(() => w.client.finalize(taskId, RESULTS));
      expect(e.code).to.equal("REVERTED");
      expect(e.action).to.equal("finalize");
      expect(e.revert?.name).to.equal("HubRevealsPending");
      expect(e.revert?.args).to.deep.equal([taskId, 1n, 3n]);
      expect(e.message).to.match(/^finalize reverted: HubRevealsPending\(/);
      expect(e.message).to.not.include("\n");

      // The refused transaction consumed no nonce: the next one goes through.
      await w.client.revealBatch(await reveals(w, taskId, digest, w.workers.slice(1)));
      expect((await w.client.finalize(taskId, RESULTS)).resultDigest).to.equal(digest);
    });

    it("refuses a callback finalization whose data does not hash to the result: HubCallbackDataMismatch", async function () {
      const m = await matchDeal(w, { trust: 1 });
      const taskId = taskIdOf(m.dealId, 0);
      const digest = id("digest");
      await w.client.contributeBatch(await contributions(w, m.dealId, 0, digest, w.workers.slice(0, 1)));
      await w.client.revealBatch(await reveals(w, taskId, digest, w.workers.slice(0, 1)));
      const e = await chainErrorOf(() => w.client.finalize(taskId, RESULTS, "0x1234"));
      expect(e.revert?.name).to.equal("HubCallbackDataMismatch");
      expect(e.revert?.named.dataHash).to.equal(keccak256("0x1234"));
    });

    it("refuses malformed input with ChainError INVALID_ARGUMENT, reads and writes alike", async function () {
      const read = await chainErrorOf(() => w.client.viewTask("0x1234"));
      expect(read.code).to.equal("INVALID_ARGUMENT");
      expect(read.message).to.match(/^viewTask: /);
      const write = await chainErrorOf(() => w.client.finalize("not a task id", RESULTS));
      expect(write.code).to.equal("INVALID_ARGUMENT");
      expect(write.message).to.not.include("\n");
    });

    it("never retries a revert (estimated once, nothing sent)", async function () {
      const provider = countingProvider(w);
      const client = w.newClient({}, provider.provider);
      const e = await chainErrorOf(() => client.reopen(id("not a task")));
      expect(e.revert?.name).to.equal("HubUnexpectedTaskStatus");
      expect(provider.calls.eth_estimateGas).to.equal(1);
      expect(provider.calls.eth_sendRawTransaction ?? 0).to.equal(0);
      provider.provider.destroy();
    });
  });

  describe("onEstimated (work started while a transaction is mined)", function () {
    it("is called once, after the estimate passed and before the transaction is sent", async function () {
      const m = await matchDeal(w, { trust: 1, volume: 1 });
      const provider = countingProvider(w);
      const client = w.newClient({}, provider.provider);
      const seen: { estimates: number; sends: number }[] = [];
      await client.initialize(m.dealId, 0, {
        onEstimated: () => seen.push({ estimates: provider.calls.eth_estimateGas ?? 0, sends: provider.calls.eth_sendRawTransaction ?? 0 }),
      });
      expect(seen).to.deep.equal([{ estimates: 1, sends: 0 }]);
      expect(provider.calls.eth_sendRawTransaction).to.equal(1);
      provider.provider.destroy();
    });

    it("is not called when the estimate reverts, and a throwing hook does not stop the transaction", async function () {
      let called = 0;
      await chainErrorOf(() => w.client.reopen(id("not a task"), { onEstimated: () => called++ }));
      expect(called).to.equal(0);
      const m = await matchDeal(w, { trust: 1, volume: 1 });
      const r = await w.client.initialize(m.dealId, 0, {
        onEstimated: () => {
          throw new Error("hook failed");
        },
      });
      expect(r.taskId).to.equal(taskIdOf(m.dealId, 0));
    });
  });

  describe("matchOrders: estimated the first time, then simulated and sent with a learnt gas limit", function () {
    it("the next match of its kind runs one eth_call instead of an estimate, with matchGasLimit of the last one's gas", async function () {
      const provider = countingProvider(w);
      const client = w.newClient({}, provider.provider);
      const first = await orders(w, { trust: 1 });
      const m1 = await client.matchOrders(first.app, first.dataset, first.workerpool, first.request);
      expect([provider.calls.eth_estimateGas, provider.calls.eth_call ?? 0], "the first: estimated").to.deep.equal([1, 0]);

      const second = await orders(w, { trust: 1 });
      let estimated = 0;
      const m2 = await client.matchOrders(second.app, second.dataset, second.workerpool, second.request, { onEstimated: () => estimated++ });
      provider.provider.destroy();
      expect([provider.calls.eth_estimateGas, provider.calls.eth_call], "the second: simulated").to.deep.equal([1, 1]);
      expect(estimated, "onEstimated, once the simulation passed").to.equal(1);
      const tx = await w.chain.provider.getTransaction(m2.hash);
      expect(tx!.gasLimit).to.equal(matchGasLimit(m1.gasUsed, tx!.data));
      expect(m2.dealId).to.not.equal(m1.dealId);
    });

    it("a set the Clerk refuses is refused by the simulation (REVERTED, nothing sent), and the figure is kept", async function () {
      const provider = countingProvider(w);
      const client = w.newClient({}, provider.provider);
      const ok = await orders(w, { trust: 1 });
      await client.matchOrders(ok.app, ok.dataset, ok.workerpool, ok.request);
      const cheap = await orders(w, { appmaxprice: PRICES.app - 1n });
      const e = await chainErrorOf(() => client.matchOrders(cheap.app, cheap.dataset, cheap.workerpool, cheap.request));
      expect(e.code).to.equal("REVERTED");
      expect(e.revert?.name).to.equal("ClerkPriceTooHigh");
      expect(e.details.txHash).to.equal(undefined);
      const again = await orders(w, { trust: 1 });
      await client.matchOrders(again.app, again.dataset, again.workerpool, again.request);
      provider.provider.destroy();
      expect([provider.calls.eth_estimateGas, provider.calls.eth_call, provider.calls.eth_sendRawTransaction]).to.deep.equal([1, 2, 2]);
    });

    it("a simulation that runs out of the learnt gas sends nothing and forgets the figure: the next match is estimated", async function () {
      const provider = countingProvider(w);
      const client = w.newClient({}, provider.provider);
      const first = await orders(w, { trust: 1 });
      await client.matchOrders(first.app, first.dataset, first.workerpool, first.request);
      (client as unknown as { matchGasUsed: Map<boolean, bigint> }).matchGasUsed.set(true, 10_000n); // far too little
      const next = await orders(w, { trust: 1 });
      const e = await chainErrorOf(() => client.matchOrders(next.app, next.dataset, next.workerpool, next.request));
      expect([e.code, e.details.txHash, e.revert], "no Clerk refusal: out of gas").to.deep.equal(["REVERTED", undefined, undefined]);
      expect(provider.calls.eth_sendRawTransaction, "nothing sent").to.equal(1);
      const m = await client.matchOrders(next.app, next.dataset, next.workerpool, next.request);
      provider.provider.destroy();
      expect(provider.calls.eth_estimateGas, "estimated again").to.equal(2);
      expect(m.dealId).to.match(/^0x[0-9a-f]{64}$/);
    });

    it("matchGasLimit: 1.5 x the last gas used + 50k + 40 per calldata byte", function () {
      expect(matchGasLimit(300_000n, "0x" + "00".repeat(1000))).to.equal(450_000n + 50_000n + 40_000n);
    });
  });

  describe("contributeBatch with a gasLimit (unestimated)", function () {
    it("goes out with that gas limit and no estimate", async function () {
      const m = await matchDeal(w, { trust: 2 });
      const items = await contributions(w, m.dealId, 0, id("unestimated batch"), w.workers.slice(0, 2));
      const provider = countingProvider(w);
      const client = w.newClient({}, provider.provider);
      const tx = await client.contributeBatch(items, { gasLimit: 500_000n });
      provider.provider.destroy();
      expect(provider.calls.eth_estimateGas ?? 0).to.equal(0);
      expect(provider.calls.eth_sendRawTransaction).to.equal(1);
      expect((await w.chain.provider.getTransaction(tx.hash))!.gasLimit).to.equal(500_000n);
      expect(tx.events.map((e) => e.name)).to.deep.equal(["TaskInitialized", "ContributionCommitted", "ContributionCommitted", "ConsensusReached"]);
      expect((await w.client.viewTask(taskIdOf(m.dealId, 0))).status).to.equal("REVEALING");
    });

    it("one that reverts is mined all the same: ChainError REVERTED with the Hub's error and the transaction's hash", async function () {
      const dealId = dealIdOf(id("no such request"), 0n);
      const items = await contributions(w, dealId, 0, id("no deal"), w.workers.slice(0, 1));
      const before = await w.chain.provider.getTransactionCount(w.scheduler.address, "latest");
      const e = await chainErrorOf(() => w.client.contributeBatch(items, { gasLimit: 300_000n }));
      expect(e.code).to.equal("REVERTED");
      expect(e.revert?.name).to.equal("HubUnknownDeal");
      expect(e.details.txHash).to.match(/^0x[0-9a-f]{64}$/);
      expect(await w.chain.provider.getTransactionCount(w.scheduler.address, "latest"), "its nonce is used").to.equal(before + 1);
    });
  });

  describe("revealAndFinalize: finalize sent right behind the reveals", function () {
    /** a task of 3 agreeing workers, in REVEALING */
    async function revealing(digest: string) {
      const m = await matchDeal(w, { trust: 3 });
      await w.client.contributeBatch(await contributions(w, m.dealId, 0, digest));
      return taskIdOf(m.dealId, 0);
    }

    it("sends both back to back (consecutive nonces, finalize unestimated, the first one's fees) and confirms each", async function () {
      const digest = id("pipelined");
      const taskId = await revealing(digest);
      const provider = countingProvider(w);
      const client = w.newClient({}, provider.provider);
      const sent = client.revealAndFinalize(await reveals(w, taskId, digest), { taskId, results: RESULTS, gasLimit: 400_000n });
      const [rtx, ftx] = await Promise.all([sent.reveal, sent.finalize]);
      expect(rtx.events.map((e) => e.name)).to.deep.equal(["ContributionRevealed", "ContributionRevealed", "ContributionRevealed"]);
      expect(ftx.resultDigest).to.equal(digest);
      expect(provider.calls.eth_estimateGas).to.equal(1); // the reveals' only
      expect(provider.calls.eth_sendRawTransaction).to.equal(2);
      const [a, b] = await Promise.all([rtx.hash, ftx.hash].map((h) => w.chain.provider.getTransaction(h)));
      expect(b!.nonce).to.equal(a!.nonce + 1);
      expect(b!.gasLimit).to.equal(400_000n);
      expect(b!.maxFeePerGas).to.equal(a!.maxFeePerGas);
      expect((await w.client.viewTask(taskId)).status).to.equal("COMPLETED");
      provider.provider.destroy();
    });

    /**
     * A trust-3 task through a client on a counting provider: its batch relayed, then revealBatch and finalize sent
     * together, both unestimated.
     */
    async function batchThenUnestimatedPair(label: string, options: Partial<ChainClientOptions> = {}) {
      const digest = id(label);
      const m = await matchDeal(w, { trust: 3 });
      const taskId = taskIdOf(m.dealId, 0);
      const provider = countingProvider(w);
      const client = w.newClient(options, provider.provider);
      const batch = await client.contributeBatch(await contributions(w, m.dealId, 0, digest));
      const pair = client.revealAndFinalize(await reveals(w, taskId, digest), { taskId, results: RESULTS, gasLimit: 400_000n, revealGasLimit: 300_000n });
      const [rtx, ftx] = await Promise.all([pair.reveal, pair.finalize]);
      provider.provider.destroy();
      return { digest, taskId, calls: provider.calls, batch, rtx, ftx };
    }

    it("with revealGasLimit, sends revealBatch unestimated too: no estimate and no fee read after the batch's", async function () {
      const { digest, taskId, calls, batch, rtx, ftx } = await batchThenUnestimatedPair("both unestimated");
      expect(ftx.resultDigest).to.equal(digest);
      expect(calls.eth_estimateGas).to.equal(1); // the batch's only
      expect(calls.eth_gasPrice).to.equal(1); // the fees read with the batch's estimate serve all three
      expect(calls.eth_sendRawTransaction).to.equal(3);
      const [c, r, f] = await Promise.all([batch.hash, rtx.hash, ftx.hash].map((h) => w.chain.provider.getTransaction(h)));
      expect([r!.nonce, f!.nonce]).to.deep.equal([c!.nonce + 1, c!.nonce + 2]);
      expect([r!.gasLimit, f!.gasLimit]).to.deep.equal([300_000n, 400_000n]);
      expect(r!.maxFeePerGas).to.equal(c!.maxFeePerGas);
      expect((await w.client.viewTask(taskId)).status).to.equal("COMPLETED");
    });

    it("reads the fees again for an unestimated transaction when feeReuseMs is 0 (no reuse)", async function () {
      const { calls } = await batchThenUnestimatedPair("fees read again", { feeReuseMs: 0 });
      expect(calls.eth_gasPrice).to.equal(2); // the batch's, then the reveals' own (finalize reuses those in sendAll)
    });

    it("sends no finalize when the reveals cannot be sent, and a finalize short of gas reverts on chain and can be redone", async function () {
      const digest = id("pipelined, refused");
      const taskId = await revealing(digest);
      const wrong = await reveals(w, taskId, id("not the committed digest"));
      const before = await w.chain.provider.getTransactionCount(w.scheduler.address, "latest");
      const sent = w.client.revealAndFinalize(wrong, { taskId, results: RESULTS, gasLimit: 400_000n });
      expect((await chainErrorOf(() => sent.reveal)).code).to.equal("REVERTED");
      const aborted = await chainErrorOf(() => sent.finalize);
      expect(aborted.code).to.equal("ABORTED");
      expect(aborted.message).to.match(/finalize: not sent, the transaction before it failed/);
      expect(await w.chain.provider.getTransactionCount(w.scheduler.address, "latest")).to.equal(before);

      const short = w.client.revealAndFinalize(await reveals(w, taskId, digest), { taskId, results: RESULTS, gasLimit: 30_000n });
      await short.reveal;
      expect((await chainErrorOf(() => short.finalize)).code).to.equal("REVERTED");
      expect((await w.client.viewTask(taskId)).status).to.equal("REVEALING");
      expect((await w.client.finalize(taskId, RESULTS)).resultDigest).to.equal(digest);
    });
  });

  describe("nonces and retries", function () {
    it("keeps nonces right when 10 transactions are fired at once", async function () {
      const m = await matchDeal(w, { trust: 1, volume: 10 });
      const start = await w.chain.provider.getTransactionCount(w.scheduler.address, "latest");
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => w.client.initialize(m.dealId, i)));
      expect(new Set(results.map((r) => r.hash)).size).to.equal(10);
      expect(results.map((r) => r.taskId)).to.deep.equal(Array.from({ length: 10 }, (_, i) => taskIdOf(m.dealId, i)));
      const nonces = await Promise.all(
        results.map(async (r) => (await w.chain.provider.getTransaction(r.hash))!.nonce),
      );
      expect([...nonces].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 10 }, (_, i) => start + i));
      expect(await w.chain.provider.getTransactionCount(w.scheduler.address, "latest")).to.equal(start + 10);
    });

    it("resyncs its nonce after another process used the key", async function () {
      const m = await matchDeal(w, { trust: 1, volume: 2 });
      const { logger, records } = recordingLogger();
      const client = w.newClient({}, undefined, logger);
      await client.initialize(m.dealId, 0); // the client now counts nonces locally
      await (await w.scheduler.sendTransaction({ to: w.scheduler.address, value: 0n })).wait(); // behind its back
      const init = await client.initialize(m.dealId, 1);
      expect(init.taskId).to.equal(taskIdOf(m.dealId, 1));
      expect(records.filter((r) => r.kind === "nonce").length).to.equal(1); // one stale attempt, then resynced
    });

    it("retries a broadcast that failed in transit, without sending twice", async function () {
      const m = await matchDeal(w, { trust: 1, volume: 2 });
      const flaky = new JsonRpcProvider(w.chain.url, Network.from(31337), {
        staticNetwork: Network.from(31337),
        cacheTimeout: -1,
      });
      const client = w.newClient({}, flaky);
      // the sender broadcasts with the raw eth_sendRawTransaction call
      const send = flaky.send.bind(flaky);
      let failures = 0;
      flaky.send = async (method: string, params: unknown[] | Record<string, unknown>) => {
        if (method !== "eth_sendRawTransaction") return send(method, params);
        if (failures === 0) {
          failures++;
          throw makeError("connection reset", "NETWORK_ERROR", { event: "broadcast" });
        }
        if (failures === 1) {
          // Arrives, but the answer is lost: the client must recognise its own transaction.
          failures++;
          await send(method, params);
          throw makeError("socket hang up", "NETWORK_ERROR", { event: "broadcast" });
        }
        return send(method, params);
      };
      const start = await w.chain.provider.getTransactionCount(w.scheduler.address, "latest");
      const init = await client.initialize(m.dealId, 0);
      expect(init.taskId).to.equal(taskIdOf(m.dealId, 0));
      expect(failures).to.equal(2);
      expect(await w.chain.provider.getTransactionCount(w.scheduler.address, "latest")).to.equal(start + 1);
      flaky.destroy();
    });
  });

  describe("claims", function () {
    it("claims a task and then the rest of the deal after the final deadline, not before", async function () {
      const m = await matchDeal(w, { trust: 3, volume: 3 });
      const early = await chainErrorOf(() => w.client.claim(m.dealId, 0));
      expect(early.revert?.name).to.equal("HubDeadlineNotReached");

      const requesterBefore = await w.client.accountOf(w.requester.address);
      await increaseTime(w, 10 * TIMEREF + 1);
      const claimed = await w.client.claim(m.dealId, 0);
      expect(claimed.events.map((e) => e.name)).to.deep.equal(["TaskClaimed"]);
      expect((await w.client.viewTask(taskIdOf(m.dealId, 0))).status).to.equal("FAILED");
      const rest = await w.client.claimDeal(m.dealId);
      expect(rest.claimed).to.equal(2);
      const requesterAfter = await w.client.accountOf(w.requester.address);
      const refund = 3n * (PRICES.app + PRICES.dataset + PRICES.workerpool);
      expect(requesterAfter.balance - requesterBefore.balance).to.equal(refund);
      expect(requesterBefore.frozen - requesterAfter.frozen).to.equal(refund);
    });
  });
});

/** A provider of its own, counting the JSON-RPC methods it sends. */
function countingProvider(w: World) {
  const network = Network.from(31337);
  const provider = new JsonRpcProvider(w.chain.url, network, { staticNetwork: network, cacheTimeout: -1 });
  const calls: Record<string, number> = {};
  const send = provider._send.bind(provider);
  provider._send = async (payload) => {
    for (const p of Array.isArray(payload) ? payload : [payload]) calls[p.method] = (calls[p.method] ?? 0) + 1;
    return send(payload);
  };
  return { provider, calls };
}
