/**
 * ChainWatcher against a real local chain: every Hub event delivered once, in chain order, across small block
 * ranges; the cursor persisted in SQLite so a new watcher resumes without replaying; a throwing handler retried
 * until it succeeds (the watcher never crashes); events held back until `confirmations` deep; a reorg under the
 * cursor detected and rewound.
 */
import { expect } from "chai";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JsonRpcProvider, hexlify, id, toBeHex, toUtf8Bytes, zeroPadValue, type Log } from "ethers";
import { openDatabase } from "../../../scheduler/store/db";
import { MemoryCursorStore, SqliteCursorStore } from "../../../scheduler/chain/cursor";
import type { CursorStore } from "../../../scheduler/chain/cursor";
import { ChainWatcher, type ChainWatcherOptions, type EventHandler } from "../../../scheduler/chain/watcher";
import { HUB_INTERFACE, relevantTo, type HubEvent } from "../../../scheduler/chain/events";
import { World, contributions, matchDeal, reveals, startWorld, taskIdOf } from "./world";

const RESULTS = hexlify(toUtf8Bytes("http://127.0.0.1/results"));

/** One whole task: match (trust 3), initialize, 3 relayed contributions, 3 reveals, finalize. */
async function runTask(w: World): Promise<string> {
  const m = await matchDeal(w, { trust: 3 });
  const taskId = taskIdOf(m.dealId, 0);
  const digest = id(`result of ${m.dealId}`);
  await w.client.initialize(m.dealId, 0);
  await w.client.contributeBatch(await contributions(w, m.dealId, 0, digest));
  await w.client.revealBatch(await reveals(w, taskId, digest));
  await w.client.finalize(taskId, RESULTS);
  return m.dealId;
}

const TASK_EVENTS = [
  "DealMatched",
  "TaskInitialized",
  "ContributionCommitted",
  "ContributionCommitted",
  "ContributionCommitted",
  "ConsensusReached",
  "ContributionRevealed",
  "ContributionRevealed",
  "ContributionRevealed",
  "TaskFinalized",
];

function watcherOf(w: World, cursors: CursorStore, handler: EventHandler, options: Partial<ChainWatcherOptions> = {}, relevant?: (log: Log) => boolean) {
  return new ChainWatcher(
    {
      hub: w.chain.deployment.hub,
      fromBlock: w.chain.deployment.blockNumber,
      maxBlockRange: 3,
      pollIntervalMs: 20,
      ...options,
    },
    { provider: w.chain.provider, cursors, handler, relevant },
  );
}

/** A handler that records what it sees. */
function recorder() {
  const seen: HubEvent[] = [];
  const handler: EventHandler = async (e) => {
    seen.push(e);
  };
  return { seen, handler };
}

function dealIdOf(e: HubEvent): string | null {
  return "dealId" in e.args ? e.args.dealId : null;
}

function position(e: HubEvent): string {
  return `${e.blockNumber}:${e.logIndex}`;
}

function expectChainOrder(events: HubEvent[]): void {
  for (let i = 1; i < events.length; i++) {
    const [a, b] = [events[i - 1], events[i]];
    expect(
      a.blockNumber < b.blockNumber || (a.blockNumber === b.blockNumber && a.logIndex < b.logIndex),
      `${position(a)} before ${position(b)}`,
    ).to.equal(true);
  }
}

describe("scheduler chain watcher", function () {
  this.timeout(120_000);
  let w: World;

  before(async function () {
    w = await startWorld();
  });

  after(async function () {
    await w?.stop();
  });

  it("delivers every event of a task once, in chain order, decoded, across small block ranges", async function () {
    const dealId = await runTask(w);
    const { seen, handler } = recorder();
    const watcher = watcherOf(w, new MemoryCursorStore(), handler);
    const result = await watcher.poll();
    expect(result.error).to.equal(undefined);
    expect(seen.map((e) => e.name)).to.deep.equal(TASK_EVENTS);
    expectChainOrder(seen);
    const matched = seen[0];
    if (matched.name !== "DealMatched") throw new Error("expected DealMatched first");
    expect(matched.args).to.deep.include({
      dealId,
      workerpool: 1n,
      volume: 1n,
      beneficiary: w.requester.address,
      params: '{"args":["hello"]}',
    });
    const finalized = seen[seen.length - 1];
    if (finalized.name !== "TaskFinalized") throw new Error("expected TaskFinalized last");
    expect(finalized.args).to.deep.equal({
      taskId: taskIdOf(dealId, 0),
      resultDigest: id(`result of ${dealId}`),
      results: RESULTS,
    });

    // Nothing new: nothing delivered again.
    expect((await watcher.poll()).handled).to.equal(0);
    expect(seen.length).to.equal(TASK_EVENTS.length);
  });

  it("delivers only the logs `relevant` keeps, asked in chain order after the earlier events were handled, and moves past the others", async function () {
    const kept = await runTask(w);
    const skipped = await runTask(w);
    const keptTask = taskIdOf(kept, 0).toLowerCase();
    const { seen, handler } = recorder();
    const asked: string[] = [];
    const cursors = new MemoryCursorStore();
    // a filter in the spirit of the scheduler's (relevantTo, tested below): a task is relevant once its deal was delivered
    const known = new Set<string>();
    const watcher = watcherOf(w, cursors, async (e) => {
      if (e.name === "DealMatched" && e.args.dealId === kept) known.add(keptTask);
      await handler(e);
    }, {}, (log) => {
      asked.push(log.topics[0]);
      return log.topics[1] === kept || known.has(log.topics[1].toLowerCase());
    });
    const result = await watcher.poll();
    expect(result.error).to.equal(undefined);
    expect(seen.map((e) => e.name)).to.deep.equal(TASK_EVENTS);
    expect(seen.every((e) => dealIdOf(e) === null || dealIdOf(e) === kept)).to.equal(true);
    expect(seen.some((e) => "taskId" in e.args && e.args.taskId === taskIdOf(skipped, 0))).to.equal(false);
    expect(asked.length).to.be.at.least(2 * TASK_EVENTS.length); // every log of both tasks was asked about
    // the cursor is past the skipped task's logs: nothing is asked or delivered again
    expect((await watcher.poll()).handled).to.equal(0);
    expect((await cursors.get("hub"))!.blockNumber).to.equal(await w.chain.provider.getBlockNumber());
  });

  it("resumes from the cursor persisted in SQLite after a restart, without replaying handled events", async function () {
    const file = join(mkdtempSync(join(tmpdir(), "concord-watcher-")), "scheduler.db");
    const first = recorder();
    const db1 = openDatabase(file);
    const before = await watcherOf(w, new SqliteCursorStore(db1), first.handler).poll();
    expect(before.handled > 0).to.equal(true);
    db1.close();

    const dealId = await runTask(w);

    const second = recorder();
    const db2 = openDatabase(file);
    const watcher = watcherOf(w, new SqliteCursorStore(db2), second.handler);
    await watcher.poll();
    db2.close();
    expect(second.seen.map((e) => e.name)).to.deep.equal(TASK_EVENTS);
    expect(second.seen[0].args).to.deep.include({ dealId });
    const firstPositions = new Set(first.seen.map(position));
    expect(second.seen.some((e) => firstPositions.has(position(e)))).to.equal(false);
  });

  it("survives a handler that throws once: the event is retried on the next poll, the run loop goes on", async function () {
    const cursors = new MemoryCursorStore();
    const fromBlock = await w.chain.provider.getBlockNumber();
    await runTask(w);
    const seen: string[] = [];
    let thrown = 0;
    const controller = new AbortController();
    const handler: EventHandler = async (e) => {
      if (e.name === "ConsensusReached" && thrown === 0) {
        thrown++;
        throw new Error("database is locked");
      }
      seen.push(e.name);
      if (seen.length === TASK_EVENTS.length) controller.abort();
    };
    const watcher = watcherOf(w, cursors, handler, { fromBlock: fromBlock + 1 });
    await watcher.run(controller.signal); // resolves once aborted: it never threw
    expect(thrown).to.equal(1);
    expect(seen).to.deep.equal(TASK_EVENTS);
  });

  it("reports a handler failure from poll() and moves the cursor only past the events handled", async function () {
    const cursors = new MemoryCursorStore();
    const fromBlock = await w.chain.provider.getBlockNumber();
    await runTask(w);
    let calls = 0;
    const failing = watcherOf(
      w,
      cursors,
      async () => {
        if (++calls === 3) throw new Error("boom");
      },
      { fromBlock: fromBlock + 1 },
    );
    const result = await failing.poll();
    expect(result.handled).to.equal(2);
    expect(String(result.error)).to.include("boom");

    const { seen, handler } = recorder();
    await watcherOf(w, cursors, handler, { fromBlock: fromBlock + 1 }).poll();
    expect(seen.map((e) => e.name)).to.deep.equal(TASK_EVENTS.slice(2));
  });

  it("holds events back until they are `confirmations` blocks deep", async function () {
    const cursors = new MemoryCursorStore();
    const fromBlock = (await w.chain.provider.getBlockNumber()) + 1;
    const { seen, handler } = recorder();
    const watcher = watcherOf(w, cursors, handler, { fromBlock, confirmations: 2 });
    const m = await matchDeal(w, { trust: 1 }); // one block
    await watcher.poll();
    expect(seen).to.deep.equal([]);
    await w.chain.provider.send("evm_mine", []);
    await watcher.poll();
    expect(seen).to.deep.equal([]);
    await w.chain.provider.send("evm_mine", []);
    await watcher.poll();
    expect(seen.map((e) => [e.name, dealIdOf(e)])).to.deep.equal([["DealMatched", m.dealId]]);
  });

  it("rewinds when the block under its cursor was replaced (reorg), and delivers the new canonical events", async function () {
    const cursors = new MemoryCursorStore();
    const fromBlock = (await w.chain.provider.getBlockNumber()) + 1;
    const snapshot = (await w.chain.provider.send("evm_snapshot", [])) as string;
    const { seen, handler } = recorder();
    const watcher = watcherOf(w, cursors, handler, { fromBlock, reorgRewind: 50 });

    const orphan = await matchDeal(w, { trust: 1 });
    await watcher.poll();
    expect(seen.map(dealIdOf)).to.deep.equal([orphan.dealId]);

    // Replace the chain from the snapshot on: another deal lands in the same block number, with another hash.
    await w.chain.provider.send("evm_revert", [snapshot]);
    await w.chain.provider.send("evm_mine", []);
    const canonical = await matchDeal(w, { trust: 2 });
    expect(canonical.blockNumber).to.equal(orphan.blockNumber + 1);
    const result = await watcher.poll();
    expect(result.reorged).to.equal(true);
    expect(seen.map((e) => e.name)).to.deep.equal(["DealMatched", "DealMatched"]);
    const replayed = seen[1];
    expect(replayed.blockNumber).to.equal(canonical.blockNumber);
    expect(replayed.transactionHash).to.equal(canonical.hash);
  });
});

describe("scheduler chain watcher: round trips", function () {
  /** The test chain's provider, counting the JSON-RPC methods it sends. */
  class CountingProvider extends JsonRpcProvider {
    readonly methods: string[] = [];
    override send(method: string, params: unknown[] | Record<string, unknown>): Promise<unknown> {
      this.methods.push(method);
      return super.send(method, params);
    }
  }
  let w: World;
  before(async function () {
    w = await startWorld();
  });
  after(async function () {
    await w?.stop();
  });

  /**
   * A watcher on a counting provider sees a deal, then polls once idle (the methods it sends are returned); then the
   * deal's block is replaced by an empty one at the same height, and the watcher polls again (`reorged` returned).
   */
  const providers: JsonRpcProvider[] = [];
  afterEach(() => providers.splice(0).forEach((p) => p.destroy()));

  async function sameHeightReorg(idleReorgCheckMs: number) {
    const network = await w.chain.provider.getNetwork();
    const provider = new CountingProvider(w.chain.url, network, { staticNetwork: network, cacheTimeout: -1 });
    providers.push(provider);
    const fromBlock = (await w.chain.provider.getBlockNumber()) + 1;
    const snapshot = (await w.chain.provider.send("evm_snapshot", [])) as string;
    const { seen, handler } = recorder();
    const watcher = new ChainWatcher(
      { hub: w.chain.deployment.hub, fromBlock, reorgRewind: 50, idleReorgCheckMs },
      { provider, cursors: new MemoryCursorStore(), handler },
    );
    const orphan = await matchDeal(w, { trust: 1 });
    await watcher.poll();
    expect(seen.map(dealIdOf)).to.deep.equal([orphan.dealId]);
    provider.methods.length = 0;
    await watcher.poll();
    const idleMethods = [...provider.methods];
    await w.chain.provider.send("evm_revert", [snapshot]);
    await w.chain.provider.send("evm_mine", []);
    expect(await w.chain.provider.getBlockNumber()).to.equal(orphan.blockNumber);
    const { reorged } = await watcher.poll();
    return { idleMethods, reorged, orphan, seen, watcher };
  }

  it("an idle poll is one round trip; a reorg that keeps the height waits for the next block (or idleReorgCheckMs)", async function () {
    const { idleMethods, reorged, orphan, seen, watcher } = await sameHeightReorg(60_000);
    expect(idleMethods, "nothing new: the head only").to.deep.equal(["eth_blockNumber"]);
    expect(reorged, "unseen while the height stays").to.equal(false);
    // rewound at the next block, whose events are delivered
    const canonical = await matchDeal(w, { trust: 2 });
    expect((await watcher.poll()).reorged).to.equal(true);
    expect(seen.map(dealIdOf)).to.deep.equal([orphan.dealId, canonical.dealId]);
  });

  it("an idle poll past idleReorgCheckMs checks the block under its cursor, and sees a reorg at the same height", async function () {
    const { idleMethods, reorged } = await sameHeightReorg(0);
    expect(idleMethods, "the head, then the cursor's block").to.deep.equal(["eth_blockNumber", "eth_getBlockByNumber"]);
    expect(reorged).to.equal(true);
  });
});

describe("scheduler chain watcher: relevantTo, the scheduler's filter", function () {
  const dealMatched = HUB_INTERFACE.getEvent("DealMatched")!.topicHash;
  const finalized = HUB_INTERFACE.getEvent("TaskFinalized")!.topicHash;
  const known = id("our task").toLowerCase();
  const relevant = relevantTo(7n, (taskId) => taskId === known);
  const pool = (n: bigint) => zeroPadValue(toBeHex(n), 32);

  it("keeps our pool's DealMatched and our tasks' events, whatever the case of the hex", function () {
    const cases: [string, string[], boolean][] = [
      ["our pool's deal", [dealMatched, id("deal"), id("request"), pool(7n)], true],
      ["our pool's deal, upper-case hex", [dealMatched.toUpperCase().replace("0X", "0x"), id("deal"), id("request"), pool(7n).toUpperCase().replace("0X", "0x")], true],
      ["another pool's deal", [dealMatched, id("deal"), id("request"), pool(8n)], false],
      ["a DealMatched missing its pool topic", [dealMatched, id("deal")], false],
      ["our task's event", [finalized, known], true],
      ["our task's event, upper-case hex", [finalized, known.toUpperCase().replace("0X", "0x")], true],
      ["another task's event", [finalized, id("their task")], false],
      ["a log without topics", [], false],
    ];
    for (const [what, topics, expected] of cases) expect(relevant({ topics }), what).to.equal(expected);
  });
});
