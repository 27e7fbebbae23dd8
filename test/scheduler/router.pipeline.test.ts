/**
 * scheduler/router.ts, the finalize's transactions: once the router has learnt the gas of a revealBatch of as many
 * reveals and of a finalize of that kind, `revealAndFinalize` sends both unestimated (one round trip and a fee read
 * saved), and only after the batch's receipt: the reveals stay with the scheduler until the commits are on chain.
 * Also: forward-only status moves after the batch, and Reveal signatures checked on arrival.
 *
 * The router runs for real on an in-memory store, with the fakes of router-world.ts. Every contributeBatch is held
 * until the test mines or fails it; the router's interval is out of the way (an hour), so only its own kicks (after an
 * event that may unblock a task, after a chain step) run ticks, and what a test sees between two of its actions is what
 * the router did in reaction to the first.
 */
import { expect } from "chai";
import { Signature, hexlify, id, toUtf8Bytes } from "ethers";
import { taskTimeline, type TaskEvent } from "../../scheduler/store/events";
import { getReplica } from "../../scheduler/store/replicas";
import { getTask } from "../../scheduler/store/tasks";
import type { RelayedReveal } from "../../sdk/orders";
import {
  DIGEST,
  FakeResults,
  assignsOf,
  commit,
  eventually,
  idle,
  kinds,
  opened,
  ordersFor,
  reveal,
  revealedFrame,
  taskOf,
  world,
  type Frame,
  type World,
  type WriteCall,
} from "./router-world";

const PUBLIC_URL = "http://127.0.0.1:1"; // the world's publicUrl
const OTHER = id("another result");

/** A world whose contributeBatch calls wait for the test, and whose router ticks only when kicked. */
async function pipelineWorld(workers = 4): Promise<World> {
  const w = await world({ workers, tickMs: 3_600_000, results: new FakeResults() });
  w.chain.holdBatches = true;
  return w;
}

interface Relayed {
  taskId: string;
  assigns: Frame<"assign">[];
  /** the replicas that committed DIGEST (the consensus): the on-chain winners */
  winners: Frame<"assign">[];
  /** its contributeBatch, held */
  batch: WriteCall;
}

/**
 * A matched deal of one task with `trust` (trust + 1 replicas), its replicas committing `digests` in order until the
 * quorum: returns once its contributeBatch is out (held) and the winners were asked to reveal.
 */
async function relayed(w: World, label: string, { trust = 3n, digests = [DIGEST, DIGEST, DIGEST] } = {}): Promise<Relayed> {
  const { orders, expected } = ordersFor(w.chain, { volume: 1n, trust, params: `{"args":["${label}"]}` });
  await w.router.onReceipt([w.chain.match(w.chain.termsOf(expected, orders))]);
  const taskId = taskOf(expected.dealId, 0);
  await eventually(() => assignsOf(w, taskId).length === Number(trust) + 1, `the replicas of ${label}`);
  const assigns = assignsOf(w, taskId);
  for (const [i, digest] of digests.entries()) await commit(w, assigns[i], digest);
  const winners = assigns.filter((_, i) => digests[i] === DIGEST);
  await eventually(() => w.chain.writesOf(taskId, "contributeBatch").length === 1, `the contributeBatch of ${label}`);
  expect(w.manager.frames("reveal", (f) => f.taskId === taskId).map((f) => f.replicaId), "reveals asked with the batch").to.have.members(winners.map((a) => a.replicaId));
  return { taskId, assigns, winners, batch: w.chain.writesOf(taskId, "contributeBatch")[0] };
}

/** Every winner reveals DIGEST (one after the other, each recorded before the next); returns what they signed. */
async function revealAll(w: World, winners: Frame<"assign">[]): Promise<RelayedReveal[]> {
  const reveals: RelayedReveal[] = [];
  for (const a of winners) reveals.push(await reveal(w, a, DIGEST));
  return reveals;
}

/**
 * A first task (nothing learnt yet) all the way: batch sent, every winner revealed before it is mined, mined, finalized
 * the usual way. Returns it and the gas its revealBatch and finalize used.
 */
async function firstTask(w: World, o: { trust?: bigint; digests?: string[] } = {}) {
  const t = await relayed(w, "first", o);
  const reveals = await revealAll(w, t.winners);
  await idle();
  const sentBeforeMined = w.chain.writesOf(t.taskId).map((c) => c.method);
  t.batch.mine();
  await completed(w, t.taskId);
  const [revealBatch] = w.chain.writesOf(t.taskId, "revealBatch");
  const [finalize] = w.chain.writesOf(t.taskId, "finalize");
  return { ...t, reveals, sentBeforeMined, revealUsed: revealBatch?.receipt.gasUsed, finalizeUsed: finalize?.receipt.gasUsed };
}

const completed = (w: World, taskId: string) => eventually(() => getTask(w.db, taskId)?.status === "completed", `task ${taskId} completed`);
const methods = (w: World, taskId: string) => w.chain.writesOf(taskId).map((c) => c.method);
const event = (w: World, taskId: string, kind: string): TaskEvent | undefined => taskTimeline(w.db, taskId).find((e) => e.kind === kind);
/** The task's status moves, in order: [from, to, reason?]. */
const moves = (w: World, taskId: string) =>
  taskTimeline(w.db, taskId)
    .filter((e) => e.kind === "task.status")
    .map((e) => [e.detail.from, e.detail.to, ...(e.detail.reason ? [e.detail.reason] : [])]);
const resultsUrl = (digest: string) => hexlify(toUtf8Bytes(`${PUBLIC_URL}/results/${digest}`));
/** `unestimatedBatchGas` (of a revealBatch, of a contributeBatch) and `pipelinedFinalizeGas` (no callback), as router.ts documents them. */
const revealLimit = (used: bigint) => (3n * used) / 2n + 30_000n;
const batchLimit = revealLimit;
const finalizeLimit = (used: bigint, contributors: number) => 2n * used + 50_000n + 40_000n * BigInt(contributors);

/** The gas figures the router learnt (white box: its private maps), as [key, gas] pairs. */
function learnt(w: World): { reveal: [number, bigint][]; finalize: [boolean, bigint][] } {
  const r = w.router as unknown as { revealGasUsed: Map<number, bigint>; finalizeGasUsed: Map<boolean, bigint> };
  return { reveal: [...r.revealGasUsed], finalize: [...r.finalizeGasUsed] };
}

describe("scheduler/router: revealBatch and finalize, unestimated once learnt, after the batch", () => {
  afterEach(async () => {
    for (const w of opened.splice(0)) await w.close();
  });

  it("the first task (nothing learnt) is not pipelined: revealBatch then finalize, estimated, after the batch is mined; their gas is learnt", async () => {
    const w = await pipelineWorld();
    const first = await firstTask(w);

    expect(first.sentBeforeMined, "every winner revealed, the batch sent: still nothing behind it").to.deep.equal(["contributeBatch"]);
    expect(methods(w, first.taskId)).to.deep.equal(["contributeBatch", "revealBatch", "finalize"]);
    const [, revealBatch, finalize] = w.chain.writesOf(first.taskId);
    expect([revealBatch.beforeBatch, finalize.beforeBatch], "sent once the batch was mined").to.deep.equal([false, false]);
    expect(revealBatch.reveals).to.have.deep.members(first.reveals);
    expect(finalize).to.include({ results: resultsUrl(DIGEST), resultsCallback: "0x" });

    expect(getTask(w.db, first.taskId)).to.include({ status: "completed", resultDigest: DIGEST });
    expect(kinds(w, first.taskId).filter((k) => ["contributed", "revealed", "finalized"].includes(k))).to.deep.equal(["contributed", "revealed", "finalized"]);
    expect(event(w, first.taskId, "finalized")!.detail).to.not.have.property("pipelined");
    expect(learnt(w)).to.deep.equal({ reveal: [[3, w.chain.gas.revealBatch(3)]], finalize: [[false, w.chain.gas.finalize]] });
  });

  it("once learnt, revealBatch and finalize go out unestimated together after the batch's receipt, never before it", async () => {
    const w = await pipelineWorld();
    const first = await firstTask(w);
    const t = await relayed(w, "second");

    const reveals = await revealAll(w, t.winners);
    await idle();
    expect(methods(w, t.taskId), "the reveals stay here until the commits are on chain").to.deep.equal(["contributeBatch"]);
    t.batch.mine();
    await completed(w, t.taskId);

    expect(methods(w, t.taskId), "nothing estimated after the batch").to.deep.equal(["contributeBatch", "revealAndFinalize"]);
    const [, pair] = w.chain.writesOf(t.taskId);
    expect(pair.beforeBatch, "sent once the batch was mined").to.equal(false);
    expect(pair.revealGasLimit, "1.5 × the last revealBatch of 3 + 30k").to.equal(revealLimit(first.revealUsed!));
    expect(pair.gasLimit, "2 × the last finalize + 50k + 40k per contribution").to.equal(finalizeLimit(first.finalizeUsed!, 3));
    expect(pair.reveals).to.have.deep.members(reveals);
    expect(pair).to.include({ results: resultsUrl(DIGEST), resultsCallback: "0x" });
    const [contributed, revealed, finalized] = ["contributed", "revealed", "finalized"].map((k) => event(w, t.taskId, k)!);
    expect(contributed.id).to.be.below(revealed.id);
    expect(revealed.id).to.be.below(finalized.id);
    expect(revealed.detail).to.include({ tx: pair.receipt.hash, reveals: 3, unestimated: true });
    expect(finalized.detail).to.include({ tx: pair.finalizeReceipt!.hash, digest: DIGEST, pipelined: true, callbackFailed: false });
    expect(moves(w, t.taskId).slice(-4)).to.deep.equal([
      ["dispatched", "committing"],
      ["committing", "revealing"],
      ["revealing", "finalizing"],
      ["finalizing", "completed"],
    ]);
    expect(t.winners.map((a) => getReplica(w.db, a.replicaId)!.revealRelayedAt !== null), "the reveals' receipt applied").to.deep.equal([true, true, true]);
  });

  it("every reveal in but the batch fails: nothing revealed on chain; the task is dispatched again, its consensus cleared", async () => {
    const w = await pipelineWorld();
    await firstTask(w);
    const t = await relayed(w, "second");

    await revealAll(w, t.winners);
    await idle();
    t.batch.fail("contributeBatch: could not send (nonce too low)");
    await eventually(() => getTask(w.db, t.taskId)!.status === "dispatched", "the task back to dispatched");
    await idle();

    expect(methods(w, t.taskId)).to.deep.equal(["contributeBatch"]);
    expect(getTask(w.db, t.taskId)).to.include({ status: "dispatched", consensusHash: null });
    expect(moves(w, t.taskId).slice(-2)).to.deep.equal([
      ["dispatched", "committing"],
      ["committing", "dispatched", "relay failed"],
    ]);
    expect(kinds(w, t.taskId)).to.not.include.members(["contributed", "revealed", "finalized"]);
  });

  it("contributeBatch is unestimated once one of as many commits went through (1.5 x its gas + 30k); a batch of another size is estimated", async () => {
    const w = await pipelineWorld();
    const first = await firstTask(w);
    expect(first.batch.gasLimit, "the first batch of 3").to.equal(undefined);

    const t = await relayed(w, "second");
    expect(t.batch.gasLimit).to.equal(batchLimit(w.chain.gas.contributeBatch));
    await revealAll(w, t.winners);
    t.batch.mine();
    await completed(w, t.taskId);
    expect(event(w, t.taskId, "contributed")!.detail).to.include({ unestimated: true });

    const other = await relayed(w, "two commits", { trust: 2n, digests: [DIGEST, DIGEST] });
    expect(other.batch.items).to.have.length(2);
    expect(other.batch.gasLimit, "the first batch of 2").to.equal(undefined);
    other.batch.mine();
    await eventually(() => kinds(w, other.taskId).includes("contributed"), "the batch of 2 recorded");
    expect(event(w, other.taskId, "contributed")!.detail).to.not.have.property("unestimated");
  });

  it("a relay that fails is told in the timeline (relay.failed), and that task relays estimated from then on; the others do not", async () => {
    const w = await pipelineWorld();
    await firstTask(w);
    const t = await relayed(w, "refused");
    const other = await relayed(w, "another task");
    expect([t.batch.gasLimit, other.batch.gasLimit], "both unestimated").to.deep.equal([batchLimit(w.chain.gas.contributeBatch), batchLimit(w.chain.gas.contributeBatch)]);
    t.batch.fail("contributeBatch reverted on chain: ClerkInsufficientBalance");
    await eventually(() => getTask(w.db, t.taskId)!.status === "dispatched", "the relay undone");
    expect(event(w, t.taskId, "relay.failed")!.detail, "the code, not the node's text").to.deep.equal({ code: "REVERTED", unestimated: true });

    other.batch.mine(); // its receipt sets the figure again, and starts the tick that relays the failed task again
    await eventually(() => w.chain.writesOf(t.taskId, "contributeBatch").length === 2, "the second relay");
    const retry = w.chain.writesOf(t.taskId, "contributeBatch")[1];
    expect(retry.gasLimit, "estimated, though the figure is known").to.equal(undefined);
    retry.mine();
    await eventually(() => kinds(w, t.taskId).includes("contributed"), "the retry recorded");

    const third = await relayed(w, "a third task");
    expect(third.batch.gasLimit, "the others go unestimated").to.equal(batchLimit(w.chain.gas.contributeBatch));
  });

  it("a winner that reveals only after the batch is mined: revealBatch and finalize go out at its reveal, unestimated", async () => {
    const w = await pipelineWorld();
    const first = await firstTask(w);
    const t = await relayed(w, "second");
    const [late, ...early] = t.winners;

    await revealAll(w, early);
    t.batch.mine();
    await eventually(() => kinds(w, t.taskId).includes("contributed"), "the batch recorded");
    await idle();
    expect(methods(w, t.taskId), "a reveal missing").to.deep.equal(["contributeBatch"]);
    expect(getTask(w.db, t.taskId)!.status).to.equal("revealing");

    await reveal(w, late, DIGEST);
    await completed(w, t.taskId);
    expect(methods(w, t.taskId)).to.deep.equal(["contributeBatch", "revealAndFinalize"]);
    const [, pair] = w.chain.writesOf(t.taskId);
    expect(pair.revealGasLimit).to.equal(revealLimit(first.revealUsed!));
    expect(pair.gasLimit).to.equal(finalizeLimit(first.finalizeUsed!, 3));
    expect(pair.reveals).to.have.length(3);
  });

  it("the unestimated revealBatch fails: both figures are forgotten, the task stays finalizing, the next tick resumes it the estimated way", async () => {
    const w = await pipelineWorld();
    await firstTask(w);
    const t = await relayed(w, "second");
    w.chain.failNext("revealAndFinalize", "revealBatch: out of gas");
    w.chain.holdNext("revealBatch"); // the resumed finalize's revealBatch waits for the test

    const reveals = await revealAll(w, t.winners);
    t.batch.mine();
    await eventually(() => w.chain.writesOf(t.taskId, "revealAndFinalize").length === 1, "the unestimated revealAndFinalize");
    const [pair] = w.chain.writesOf(t.taskId, "revealAndFinalize");
    await eventually(() => pair.state === "failed", "the pair failed");
    expect(learnt(w), "both figures forgotten").to.deep.equal({ reveal: [], finalize: [] });
    expect(getTask(w.db, t.taskId)!.status).to.equal("finalizing");

    w.router["kick"](); // the next tick (the interval is an hour here)
    await eventually(() => w.chain.writesOf(t.taskId, "revealBatch").length === 1, "the resumed finalize's revealBatch");
    const [resumed] = w.chain.writesOf(t.taskId, "revealBatch");
    expect(w.chain.calls.viewTask.filter((v) => v.taskId === t.taskId && v.seq > pair.seq && v.seq < resumed.seq), "resumed: the chain asked first").to.have.length(1);
    expect(resumed.reveals).to.have.deep.members(reveals);
    resumed.mine();
    await completed(w, t.taskId);
    expect(methods(w, t.taskId)).to.deep.equal(["contributeBatch", "revealAndFinalize", "revealBatch", "finalize"]);
    expect(taskTimeline(w.db, t.taskId).filter((e) => e.kind === "finalized").map((e) => e.detail.pipelined ?? false)).to.deep.equal([false]);
  });

  it("a divergent commit relayed with the winners: only the winners' reveals are sent; the finalize's gas counts every contribution", async () => {
    const w = await pipelineWorld(3);
    const first = await firstTask(w, { trust: 2n, digests: [DIGEST, DIGEST] });
    const t = await relayed(w, "divergent", { trust: 2n, digests: [DIGEST, OTHER, DIGEST] });
    expect(t.batch.items!.map((c) => c.worker)).to.have.members(t.assigns.map((a) => a.worker));

    const reveals = await revealAll(w, t.winners);
    t.batch.mine();
    await completed(w, t.taskId);
    const [pair] = w.chain.writesOf(t.taskId, "revealAndFinalize");
    expect(pair.reveals).to.have.deep.members(reveals);
    expect(pair.revealGasLimit).to.equal(revealLimit(first.revealUsed!));
    expect(pair.gasLimit, "three contributions on chain").to.equal(finalizeLimit(first.finalizeUsed!, 3));
  });

  // The watcher (confirmations 0 by default) may deliver the batch's block before the sender (1 confirmation, receipt
  // polled) has its receipt: the relay step then finds the task moved on, and moves it forward only.
  it("the watcher delivers the batch's events before its receipt: the task moves to revealing once, and finalizes", async () => {
    const w = await pipelineWorld();
    await firstTask(w);
    const t = await relayed(w, "second");
    await revealAll(w, t.winners);
    for (const e of t.batch.receipt.events) await w.router.onChainEvent(e);
    expect(getTask(w.db, t.taskId)!.status).to.equal("revealing");
    t.batch.mine();
    await completed(w, t.taskId);
    expect(w.logs.filter((l) => l.level >= 50).map((l) => `${l.msg}: ${String(l.err)}`), "errors logged").to.deep.equal([]);
    expect(getTask(w.db, t.taskId)!.consensusHash).to.be.a("string");
    expect(methods(w, t.taskId)).to.deep.equal(["contributeBatch", "revealAndFinalize"]);
  });

  it("a reveal signed by another key is refused (BAD_SIGNATURE), never counted nor relayed: the Hub would refuse the whole revealBatch", async () => {
    const w = await pipelineWorld();
    const t = await relayed(w, "forged reveal");
    const [forger, ...honest] = t.winners;
    const frame = await revealedFrame(w, forger, DIGEST);
    const other = await revealedFrame(w, honest[0], DIGEST); // a valid Reveal, but another worker's
    w.manager.emit("revealed", forger.worker, { ...frame, signature: other.signature });
    await eventually(() => getReplica(w.db, forger.replicaId)?.status === "failed", "the forged reveal refused");
    expect(getReplica(w.db, forger.replicaId)!.times.revealed).to.equal(null);
    expect(w.logs.some((l) => l.msg === "router step failed"), "no router step failed").to.equal(false);
    w.manager.emit("revealed", honest[1].worker, { ...(await revealedFrame(w, honest[1], DIGEST)), signature: "0x1234" });
    await eventually(() => getReplica(w.db, honest[1].replicaId)?.status === "failed", "a malformed signature refused");
    t.batch.mine();
    await idle();
    expect(w.chain.writesOf(t.taskId).map((c) => c.method), "no revealBatch with a refused reveal in it").to.deep.equal(["contributeBatch"]);
  });

  it("the finalize right after the batch reads no block for the chain's clock: the batch's ConsensusReached dates its block", async () => {
    const w = await pipelineWorld();
    const t = await relayed(w, "clock from the batch");
    await revealAll(w, t.winners);
    const router = w.router as unknown as { chainClock: { readAt: number; timestamp: number } };
    router.chainClock.readAt = -Infinity; // no recent read to reuse
    const reads = w.chain.calls.latestBlock;
    t.batch.mine();
    await completed(w, t.taskId);
    expect(w.chain.calls.latestBlock - reads, "latestBlock reads").to.equal(0);
    const reached = t.batch.receipt.events.find((e) => e.name === "ConsensusReached")!;
    const revealDeadline = (reached.args as { revealDeadline: bigint }).revealDeadline;
    expect(router.chainClock.timestamp, "the reveal deadline less 2 timerefs").to.equal(Number(revealDeadline) - 2 * 60);
  });

  describe("the reveal deadline (ConsensusReached: 2 timerefs after the batch's block, timeref 60 s)", () => {
    /** Moves the fake chain's clock to `sec` after now, and runs a tick that reads it (the router reads it once a second). */
    async function chainClockAt(w: World, sec: number): Promise<void> {
      w.chain.clockAheadSec = sec;
      (w.router as unknown as { chainClock: { readAt: number } }).chainClock.readAt = -Infinity;
      w.router["kick"]();
      await idle();
    }

    it("a winner whose reveal failed: the others' reveals go on chain at once; finalize alone once the deadline passed", async () => {
      const w = await pipelineWorld();
      const t = await relayed(w, "one winner fails");
      const [forger, ...honest] = t.winners;
      const other = await revealedFrame(w, honest[0], DIGEST);
      w.manager.emit("revealed", forger.worker, { ...(await revealedFrame(w, forger, DIGEST)), signature: other.signature });
      await eventually(() => getReplica(w.db, forger.replicaId)?.status === "failed", "the forged reveal refused");
      const reveals = await revealAll(w, honest);
      t.batch.mine();
      await eventually(() => w.chain.writesOf(t.taskId, "revealBatch").length === 1, "the reveals in so far relayed");
      const [partial] = w.chain.writesOf(t.taskId, "revealBatch");
      expect(partial.reveals).to.have.deep.members(reveals);
      await idle();
      expect(getTask(w.db, t.taskId)!.status, "the chain waits for the failed winner until the deadline").to.equal("revealing");
      expect(event(w, t.taskId, "revealed")!.detail).to.include({ reveals: 2, partial: true });

      await chainClockAt(w, 119);
      expect(methods(w, t.taskId)).to.deep.equal(["contributeBatch", "revealBatch"]);
      await chainClockAt(w, 120);
      await completed(w, t.taskId);
      expect(methods(w, t.taskId), "no reveal after the deadline: finalize alone").to.deep.equal(["contributeBatch", "revealBatch", "finalize"]);
      expect(moves(w, t.taskId).slice(-2)).to.deep.equal([
        ["revealing", "finalizing", "reveal deadline passed: silent winners are seized"],
        ["finalizing", "completed"],
      ]);
    });

    it("a silent winner: the others' reveals go on chain once the deadline is less than a timeref away, then finalize alone", async () => {
      const w = await pipelineWorld();
      const t = await relayed(w, "one winner silent");
      const reveals = await revealAll(w, t.winners.slice(1));
      t.batch.mine();
      await eventually(() => kinds(w, t.taskId).includes("contributed"), "the batch recorded");
      await chainClockAt(w, 59);
      expect(methods(w, t.taskId), "more than a timeref left: still waiting").to.deep.equal(["contributeBatch"]);
      await chainClockAt(w, 60);
      await eventually(() => w.chain.writesOf(t.taskId, "revealBatch").length === 1, "the reveals in so far relayed");
      expect(w.chain.writesOf(t.taskId, "revealBatch")[0].reveals).to.have.deep.members(reveals);
      await chainClockAt(w, 120);
      await completed(w, t.taskId);
      expect(methods(w, t.taskId)).to.deep.equal(["contributeBatch", "revealBatch", "finalize"]);
    });

    it("a winner revealing after the deadline, the others' reveals on chain: finalize alone, no revealBatch after the deadline", async () => {
      const w = await pipelineWorld();
      const t = await relayed(w, "late winner");
      const [late, ...early] = t.winners;
      await revealAll(w, early);
      t.batch.mine();
      await eventually(() => kinds(w, t.taskId).includes("contributed"), "the batch recorded");
      await chainClockAt(w, 60);
      await eventually(() => w.chain.writesOf(t.taskId, "revealBatch").length === 1, "the reveals in so far relayed");
      await chainClockAt(w, 120);
      await reveal(w, late, DIGEST); // in after the deadline: it cannot go on chain any more
      await completed(w, t.taskId);
      expect(methods(w, t.taskId)).to.deep.equal(["contributeBatch", "revealBatch", "finalize"]);
      expect(w.chain.writesOf(t.taskId, "revealBatch")[0].reveals).to.have.length(2);
    });

    it("reveals received but none on chain by the deadline: no reopen (it would seize them), the task is left to the claim", async () => {
      const w = await pipelineWorld();
      const t = await relayed(w, "reveals stuck");
      for (let i = 0; i < 20; i++) w.chain.failNext("revealBatch", "revealBatch: node unreachable");
      await revealAll(w, t.winners.slice(1));
      t.batch.mine();
      await eventually(() => kinds(w, t.taskId).includes("contributed"), "the batch recorded");
      await chainClockAt(w, 60);
      await eventually(() => w.chain.writesOf(t.taskId, "revealBatch").length >= 1, "the partial revealBatch tried");
      await idle();
      const tried = w.chain.writesOf(t.taskId, "revealBatch").length;
      await chainClockAt(w, 120);
      await eventually(() => getTask(w.db, t.taskId)!.status === "failed", "the task failed");
      expect(w.chain.writesOf(t.taskId, "revealBatch"), "no reveal after the deadline").to.have.length(tried);
      expect(methods(w, t.taskId).filter((m) => m !== "revealBatch"), "no reopen").to.deep.equal(["contributeBatch"]);
      expect(moves(w, t.taskId).at(-1)).to.deep.equal(["revealing", "failed", "reveal deadline passed with no reveal on chain (left to the claim)"]);
    });

    it("Reveal signatures the Hub refuses are refused on arrival: a compact 64-byte one, v = 0/1, a high s", async () => {
      const w = await pipelineWorld();
      const t = await relayed(w, "odd signatures");
      const frames = await Promise.all(t.winners.map((a) => revealedFrame(w, a, DIGEST)));
      const sig = Signature.from(frames[0].signature);
      const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
      const odd = [
        sig.compactSerialized,
        sig.r + sig.s.slice(2) + (sig.v === 27 ? "00" : "01"),
        sig.r + (N - BigInt(sig.s)).toString(16).padStart(64, "0") + (sig.v === 27 ? "1c" : "1b"),
      ];
      for (const [i, signature] of odd.entries()) {
        const a = t.winners[i];
        w.manager.emit("revealed", a.worker, { ...(await revealedFrame(w, a, DIGEST)), signature });
        await eventually(() => getReplica(w.db, a.replicaId)?.status === "failed", `odd signature ${i} refused`);
        expect(getReplica(w.db, a.replicaId)).to.include({ failureCode: "BAD_SIGNATURE" });
      }
    });

    it("after a reopen, the last round's winners (one whose reveal was refused) do not hold up the new round", async () => {
      const w = await pipelineWorld();
      const t = await relayed(w, "reopened", { trust: 1n, digests: [DIGEST] });
      const [a] = t.winners;
      const other = await revealedFrame(w, assignsOf(w, t.taskId)[1], DIGEST);
      w.manager.emit("revealed", a.worker, { ...(await revealedFrame(w, a, DIGEST)), signature: other.signature });
      await eventually(() => getReplica(w.db, a.replicaId)?.status === "failed", "the refused reveal");
      t.batch.mine();
      await eventually(() => kinds(w, t.taskId).includes("contributed"), "the batch recorded");
      // no reveal went on chain by the deadline: the chain reopens the task (as the router's reopen would), some time
      // after the batch (the store's clock is in ms: the rounds are told apart by it)
      await new Promise((resolve) => setTimeout(resolve, 3));
      await w.router.onChainEvent({ name: "TaskReopened", args: { taskId: t.taskId }, blockNumber: 400, blockHash: id("block 400"), transactionHash: id("reopen tx"), transactionIndex: 0, logIndex: 0 });
      expect(getTask(w.db, t.taskId)).to.include({ status: "committing", consensusHash: null });

      await new Promise((resolve) => setTimeout(resolve, 3));
      w.router["kick"]();
      await eventually(() => assignsOf(w, t.taskId).length > 2, "the new round dispatched");
      const fresh = assignsOf(w, t.taskId).slice(2);
      await commit(w, fresh[0], DIGEST);
      await eventually(() => w.chain.writesOf(t.taskId, "contributeBatch").length === 2, "the new round's batch");
      const batch = w.chain.writesOf(t.taskId, "contributeBatch")[1];
      await reveal(w, fresh[0], DIGEST);
      batch.mine();
      await idle();
      await completed(w, t.taskId);
      expect(w.chain.writesOf(t.taskId, "revealBatch")[0].reveals!.map((r) => r.worker)).to.deep.equal([fresh[0].worker]);
    });
  });
});
