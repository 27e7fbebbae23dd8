/**
 * scheduler/core/policy (and the token bucket it spends): what the router does next for a task. Table-driven: each
 * row is a task view (replicas with their status, commits and times), the clock, the pool's p95 and the bucket, and
 * the exact actions expected. Then properties: decisions are idempotent once applied, hedges never exceed the budget,
 * and a global slowdown cannot double the load.
 */
import { expect } from "chai";
import fc from "fast-check";
import { TokenBucket, creditBucket, takeToken, tokenBucket } from "../../../scheduler/core/bucket";
import { isCoreError } from "../../../scheduler/core/errors";
import {
  Action,
  PolicyOptions,
  PoolStats,
  ReplicaView,
  TaskView,
  defaultPolicyOptions,
  maxReplicasFor,
  nextActions,
  policyOptions,
} from "../../../scheduler/core/policy";
import type { ReplicaStatus, TaskStatus } from "../../../scheduler/core/types";

// ---------------------------------------------------------------------------------------------------------- helpers

const T0 = 1_700_000_000_000;
const SEC = 1000;
const h = (n: number) => "0x" + n.toString(16).padStart(64, "0");

/** A replica `id` on worker `w<id>`, dispatched at T0; `commit` = [result, at offset in s]. */
function r(id: string, status: ReplicaStatus, o: { commit?: [number, number]; at?: number; revealAsked?: boolean; replacedBy?: string } = {}): ReplicaView {
  return {
    replicaId: id,
    worker: `w${id}`,
    status,
    dispatchedAt: T0 + (o.at ?? 0) * SEC,
    resultHash: o.commit ? h(o.commit[0]) : null,
    committedAt: o.commit ? T0 + o.commit[1] * SEC : null,
    revealRequestedAt: o.revealAsked ? T0 + 100 * SEC : null,
    replacedBy: o.replacedBy ?? null,
  };
}

function task(replicas: ReplicaView[], o: Partial<TaskView> = {}): TaskView {
  return {
    taskId: "0x" + "ab".repeat(32),
    status: replicas.length === 0 ? "pending" : "dispatched",
    quorum: 2,
    contributionDeadline: T0 + 3600 * SEC,
    consensusHash: null,
    replicas,
    ...o,
  };
}

const fixed = (extra = 1): Partial<PolicyOptions> => ({ mode: "fixed", extra });
const adaptive: Partial<PolicyOptions> = { mode: "adaptive" };

interface Row {
  name: string;
  task: TaskView;
  /** seconds after T0 (default 10) */
  now?: number;
  stats?: PoolStats;
  tokens?: number;
  options?: Partial<PolicyOptions>;
  actions: Action[];
  /** tokens left after the decision (default: unchanged) */
  tokensAfter?: number;
}

function decide(row: Pick<Row, "task" | "now" | "stats" | "tokens" | "options">) {
  return nextActions(row.task, T0 + (row.now ?? 10) * SEC, row.stats ?? { p95CommitMs: null }, tokenBucket(10, row.tokens ?? 5), row.options ?? adaptive);
}

function runRows(rows: Row[]) {
  for (const row of rows) {
    it(row.name, () => {
      const d = decide(row);
      expect(d.actions).to.deep.equal(row.actions);
      expect(d.bucket.tokens).to.be.closeTo(row.tokensAfter ?? row.tokens ?? 5, 1e-9);
    });
  }
}

// ---------------------------------------------------------------------------------------------------------- tables

describe("scheduler/core/policy", () => {
  describe("first dispatch", () => {
    runRows([
      { name: "adaptive: q replicas, credited to the hedging budget (2 × 5 %)", task: task([]), actions: [{ type: "dispatch", count: 2, reason: "initial" }], tokensAfter: 5.1 },
      { name: "fixed: k = q + extra replicas at once", task: task([]), options: fixed(1), actions: [{ type: "dispatch", count: 3, reason: "initial" }], tokensAfter: 5.15 },
      { name: "fixed, trust 1, extra 2: three replicas", task: task([], { quorum: 1 }), options: fixed(2), actions: [{ type: "dispatch", count: 3, reason: "initial" }], tokensAfter: 5.15 },
      { name: "no free slot: nothing yet (retried on the next tick)", task: task([]), stats: { p95CommitMs: null, freeSlots: 0 }, actions: [] },
      { name: "one free slot: one replica now, the other later", task: task([]), stats: { p95CommitMs: null, freeSlots: 1 }, actions: [{ type: "dispatch", count: 1, reason: "initial" }], tokensAfter: 5.05 },
      { name: "already dispatched and running: nothing to do", task: task([r("1", "running"), r("2", "assigned")]), actions: [] },
    ]);
  });

  describe("task statuses without work", () => {
    for (const status of ["finalizing", "completed", "failed", "claimed"] as TaskStatus[]) {
      runRows([{ name: `${status}: nothing`, task: task([r("1", "lost")], { status }), actions: [] }]);
    }
  });

  describe("quorum reached → reveal the winners, cancel the rest", () => {
    runRows([
      {
        name: "reveal the two agreeing, cancel the runner and the dissenter",
        task: task([r("1", "committed", { commit: [1, 3] }), r("2", "committed", { commit: [2, 4] }), r("3", "running"), r("4", "committed", { commit: [1, 5] })]),
        actions: [
          { type: "reveal", replicaIds: ["1", "4"] },
          { type: "cancel", replicaIds: ["2", "3"], reason: "quorum reached" },
        ],
      },
      {
        name: "once relayed, only winners not asked yet are asked to reveal",
        task: task([r("1", "revealed", { commit: [1, 3] }), r("2", "committed", { commit: [1, 4], revealAsked: true }), r("3", "committed", { commit: [1, 5] })], {
          quorum: 3,
          consensusHash: h(1),
        }),
        actions: [{ type: "reveal", replicaIds: ["3"] }],
      },
      {
        name: "a relay that failed after the winners were asked (or revealed) relays every winner again",
        task: task([r("1", "revealed", { commit: [1, 3] }), r("2", "committed", { commit: [1, 4], revealAsked: true }), r("3", "committed", { commit: [1, 5] })], { quorum: 3 }),
        actions: [{ type: "reveal", replicaIds: ["1", "2", "3"] }],
      },
      {
        name: "surplus agreeing commits beyond q are cancelled (they cannot reach the chain)",
        task: task([r("1", "committed", { commit: [1, 3] }), r("2", "committed", { commit: [1, 4] }), r("3", "committed", { commit: [1, 5] })]),
        actions: [
          { type: "reveal", replicaIds: ["1", "2"] },
          { type: "cancel", replicaIds: ["3"], reason: "quorum reached" },
        ],
      },
      {
        name: "a winner that was lost after committing is not asked (until it is back)",
        task: task([r("1", "lost", { commit: [1, 3] }), r("2", "committed", { commit: [1, 4] })], { status: "revealing" }),
        actions: [{ type: "reveal", replicaIds: ["2"] }],
      },
      {
        name: "the winner the scheduler acted on stays the winner when a larger group shows up late",
        task: task(
          [
            r("1", "committed", { commit: [1, 1], revealAsked: true }),
            r("2", "committed", { commit: [1, 2], revealAsked: true }),
            r("3", "cancelled", { commit: [2, 3] }),
            r("4", "cancelled", { commit: [2, 4] }),
            r("5", "cancelled", { commit: [2, 5] }),
          ],
          { consensusHash: h(1), status: "revealing" },
        ),
        actions: [],
      },
      {
        name: "everything settled (relayed, revealed): nothing",
        task: task([r("1", "revealed", { commit: [1, 3] }), r("2", "revealed", { commit: [1, 4] }), r("3", "cancelled")], { consensusHash: h(1), status: "revealing" }),
        actions: [],
      },
    ]);
  });

  describe("lost workers and failed runs", () => {
    runRows([
      { name: "a lost worker's replica is reassigned", task: task([r("1", "running"), r("2", "lost")]), actions: [{ type: "reassign", replicaId: "2" }], tokensAfter: 5.05 },
      { name: "a lost replica already replaced is not reassigned again", task: task([r("1", "running"), r("2", "lost", { replacedBy: "3" }), r("3", "running")]), actions: [] },
      {
        name: "a replica lost after committing keeps its commit: no reassignment",
        task: task([r("1", "lost", { commit: [1, 2] }), r("2", "running"), r("3", "running")], { quorum: 3 }),
        actions: [],
      },
      { name: "reassignment waits for a free slot", task: task([r("1", "running"), r("2", "lost")]), stats: { p95CommitMs: null, freeSlots: 0 }, actions: [] },
      { name: "a failed run is replaced (required)", task: task([r("1", "running"), r("2", "failed")]), actions: [{ type: "dispatch", count: 1, reason: "required" }], tokensAfter: 5.05 },
      {
        name: "q + 1 failed runs: give up (the app fails everywhere)",
        task: task([r("1", "failed"), r("2", "failed"), r("3", "failed"), r("4", "running")]),
        actions: [
          { type: "cancel", replicaIds: ["4"], reason: "gave up" },
          { type: "giveUp", reason: "3 runs failed" },
        ],
      },
      {
        name: "a winner marked failed (silent at reveal) no longer counts: a new replica is needed",
        task: task([r("1", "failed", { commit: [1, 2] }), r("2", "committed", { commit: [1, 3] })]),
        actions: [{ type: "dispatch", count: 1, reason: "required" }],
        tokensAfter: 5.05,
      },
    ]);
  });

  describe("disagreement → add replicas", () => {
    runRows([
      {
        name: "adaptive, 1 vs 1: one required replica plus one hedge from the bucket",
        task: task([r("1", "committed", { commit: [1, 2] }), r("2", "committed", { commit: [2, 3] })]),
        tokens: 1,
        actions: [
          { type: "dispatch", count: 1, reason: "required" },
          { type: "dispatch", count: 1, reason: "disagreement" },
        ],
        tokensAfter: 0.05,
      },
      {
        name: "adaptive, budget exhausted: only the required replica, no extra",
        task: task([r("1", "committed", { commit: [1, 2] }), r("2", "committed", { commit: [2, 3] })]),
        tokens: 0.5,
        actions: [{ type: "dispatch", count: 1, reason: "required" }],
        tokensAfter: 0.55,
      },
      {
        name: "adaptive, disagreement with one still running: one hedge",
        task: task([r("1", "committed", { commit: [1, 2] }), r("2", "committed", { commit: [2, 3] }), r("3", "running")], { quorum: 2 }),
        actions: [{ type: "dispatch", count: 1, reason: "disagreement" }],
        tokensAfter: 4,
      },
      {
        name: "adaptive, disagreement already hedged (one spare live replica): nothing",
        task: task([r("1", "committed", { commit: [1, 2] }), r("2", "committed", { commit: [2, 3] }), r("3", "running"), r("4", "running")]),
        actions: [],
      },
      {
        name: "fixed, a dissenter: keep needed + extra live",
        task: task([r("1", "committed", { commit: [1, 2] }), r("2", "committed", { commit: [2, 3] }), r("3", "running")]),
        options: fixed(1),
        actions: [{ type: "dispatch", count: 1, reason: "required" }],
        tokensAfter: 5.05,
      },
      {
        name: "the cap is spent and the quorum is out of reach: give up",
        task: task([1, 2, 3, 4, 5, 6].map((i) => r(String(i), "committed", { commit: [i, i] }))),
        actions: [
          { type: "cancel", replicaIds: ["1", "2", "3", "4", "5", "6"], reason: "gave up" },
          { type: "giveUp", reason: "quorum 2 unreachable within 6 replicas" },
        ],
      },
      {
        name: "near the cap, only what the cap allows is dispatched",
        task: task([1, 2, 3, 4, 5].map((i) => r(String(i), "committed", { commit: [i, i] }))),
        actions: [{ type: "dispatch", count: 1, reason: "required" }],
        tokensAfter: 5.05,
      },
    ]);
  });

  describe("stragglers (adaptive: past the observed p95)", () => {
    const p95 = { p95CommitMs: 5 * SEC };
    runRows([
      { name: "a replica past p95: one hedge, paid by a token", task: task([r("1", "committed", { commit: [1, 2] }), r("2", "running")]), stats: p95, now: 10, actions: [{ type: "dispatch", count: 1, reason: "straggler" }], tokensAfter: 4 },
      { name: "both replicas past p95: still one hedge per decision", task: task([r("1", "running"), r("2", "running")]), stats: p95, now: 10, actions: [{ type: "dispatch", count: 1, reason: "straggler" }], tokensAfter: 4 },
      { name: "budget exhausted: no extra", task: task([r("1", "committed", { commit: [1, 2] }), r("2", "running")]), stats: p95, now: 10, tokens: 0.99, actions: [] },
      { name: "within p95: no hedge", task: task([r("1", "committed", { commit: [1, 2] }), r("2", "running")]), stats: p95, now: 5, actions: [] },
      { name: "p95 unknown yet: no hedge", task: task([r("1", "committed", { commit: [1, 2] }), r("2", "running")]), now: 60, actions: [] },
      {
        name: "already hedged: the fresh hedge covers the need",
        task: task([r("1", "committed", { commit: [1, 2] }), r("2", "running"), r("3", "running", { at: 8 })]),
        stats: p95,
        now: 10,
        actions: [],
      },
      { name: "fixed mode never hedges stragglers", task: task([r("1", "committed", { commit: [1, 2] }), r("2", "running"), r("3", "running")]), stats: p95, now: 60, options: fixed(1), actions: [] },
      { name: "no free slot: no hedge", task: task([r("1", "committed", { commit: [1, 2] }), r("2", "running")]), stats: { ...p95, freeSlots: 0 }, now: 10, actions: [] },
    ]);
  });

  describe("deadlines", () => {
    const t = () => task([r("1", "committed", { commit: [1, 2] }), r("2", "running"), r("3", "cancelled")], { contributionDeadline: T0 + 100 * SEC });
    runRows([
      { name: "before the deadline minus the relay margin: keep going", task: t(), now: 79, actions: [] },
      {
        name: "at the deadline minus the relay margin: cancel what is held, give up",
        task: t(),
        now: 80,
        actions: [
          { type: "cancel", replicaIds: ["1", "2"], reason: "gave up" },
          { type: "giveUp", reason: "contribution deadline reached" },
        ],
      },
      { name: "a quorum reached just before the deadline is still revealed", task: task([r("1", "committed", { commit: [1, 2] }), r("2", "committed", { commit: [1, 3] })], { contributionDeadline: T0 + 100 * SEC }), now: 99, actions: [{ type: "reveal", replicaIds: ["1", "2"] }] },
    ]);
  });

  describe("input checks", () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(isCoreError(e), String(e)).to.equal(true);
        return (e as { code: string }).code;
      }
      return "none";
    };
    it("refuses malformed task views and options with a clear code", () => {
      expect(code(() => decide({ task: task([], { quorum: 0 }) }))).to.equal("INVALID_QUORUM");
      expect(code(() => decide({ task: task([], { status: "weird" as TaskStatus }) }))).to.equal("INVALID_TASK");
      expect(code(() => decide({ task: task([r("1", "zombie" as ReplicaStatus)]) }))).to.equal("INVALID_TASK");
      expect(code(() => decide({ task: task([r("1", "running"), r("1", "running")]) }))).to.equal("INVALID_TASK");
      expect(code(() => decide({ task: task([r("1", "committed", { commit: [1, 1] })].map((x) => ({ ...x, resultHash: "0xzz" }))) }))).to.equal("INVALID_COMMIT");
      expect(code(() => decide({ task: task([]), options: { mode: "both" as "fixed" } }))).to.equal("INVALID_POLICY");
      expect(code(() => policyOptions({ extra: -1 }))).to.equal("INVALID_POLICY");
      expect(code(() => policyOptions({ budgetPercent: 150 }))).to.equal("INVALID_POLICY");
      expect(code(() => policyOptions({ maxReplicas: 33 }))).to.equal("INVALID_POLICY");
      expect(code(() => decide({ task: task([]), stats: { p95CommitMs: null, freeSlots: -1 } }))).to.equal("INVALID_TASK");
    });

    it("caps replicas per task at min(32, 2q + 2) by default, never below q", () => {
      expect([1, 2, 3, 15, 20].map((q) => maxReplicasFor(q))).to.deep.equal([4, 6, 8, 32, 32]);
      expect(maxReplicasFor(5, policyOptions({ maxReplicas: 3 }))).to.equal(5);
    });
  });

  // ------------------------------------------------------------------------------------------------------ properties

  /** Applies a decision to a task view the way the router would (new replicas assigned now, cancels marked…). */
  function apply(t: TaskView, actions: Action[], now: number, winner: string | null): TaskView {
    let replicas = [...t.replicas];
    let consensusHash = t.consensusHash;
    let n = replicas.length;
    const fresh = (): ReplicaView => ({ ...r(`n${n++}`, "assigned"), dispatchedAt: now });
    for (const a of actions) {
      if (a.type === "dispatch") for (let i = 0; i < a.count; i++) replicas.push(fresh());
      if (a.type === "reassign") {
        const nr = fresh();
        replicas = replicas.map((x) => (x.replicaId === a.replicaId ? { ...x, replacedBy: nr.replicaId } : x));
        replicas.push(nr);
      }
      if (a.type === "cancel") replicas = replicas.map((x) => (a.replicaIds.includes(x.replicaId) ? { ...x, status: "cancelled" as const } : x));
      if (a.type === "reveal") {
        replicas = replicas.map((x) => (a.replicaIds.includes(x.replicaId) ? { ...x, revealRequestedAt: now } : x));
        consensusHash = winner; // the router relays the winners: the consensus is pinned
      }
    }
    const gaveUp = actions.some((a) => a.type === "giveUp");
    return { ...t, replicas, consensusHash, status: gaveUp ? "failed" : t.status };
  }

  const replicaArb = fc.record({
    status: fc.constantFrom<ReplicaStatus>("assigned", "running", "committed", "revealed", "cancelled", "failed", "lost"),
    result: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    at: fc.integer({ min: 0, max: 30 }),
  });
  const viewArb = fc.record({
    quorum: fc.integer({ min: 1, max: 4 }),
    replicas: fc.array(replicaArb, { maxLength: 8 }),
    mode: fc.constantFrom<"fixed" | "adaptive">("fixed", "adaptive"),
    p95: fc.option(fc.integer({ min: 1, max: 20 }), { nil: null }),
    tokens: fc.double({ min: 0, max: 10, noNaN: true }),
    now: fc.integer({ min: 0, max: 60 }),
  });
  const build = (v: typeof viewArb extends fc.Arbitrary<infer X> ? X : never) =>
    task(
      v.replicas.map((x, i) =>
        r(String(i), x.status, { at: x.at, commit: x.result !== undefined && x.status !== "assigned" && x.status !== "running" ? [x.result, x.at + 1] : undefined }),
      ),
      { quorum: v.quorum, status: "committing" },
    );

  it("property: applying a decision and deciding again adds nothing new to dispatch, reveal or cancel", () => {
    fc.assert(
      fc.property(viewArb, (v) => {
        const t = build(v);
        const now = T0 + v.now * SEC;
        const options = { mode: v.mode };
        const first = nextActions(t, now, { p95CommitMs: null }, tokenBucket(10, v.tokens), options);
        const second = nextActions(apply(t, first.actions, now, first.consensus.winner?.resultHash ?? null), now, { p95CommitMs: null }, first.bucket, options);
        const repeated = second.actions.filter((a) => a.type === "reveal" || a.type === "cancel" || a.type === "reassign");
        expect(repeated, JSON.stringify(first.actions)).to.deep.equal([]);
        // Without a clock change only a hedge may follow (its own decision: at most one per call).
        expect(second.actions.filter((a) => a.type === "dispatch" && a.reason !== "disagreement")).to.deep.equal([]);
      }),
    );
  });

  it("property: never more replicas than the cap, at most one hedge per decision, nothing once reached but reveal/cancel", () => {
    fc.assert(
      fc.property(viewArb, (v) => {
        const t = build(v);
        const d = nextActions(t, T0 + v.now * SEC, { p95CommitMs: v.p95 === null ? null : v.p95 * SEC }, tokenBucket(10, v.tokens), { mode: v.mode });
        const added = d.actions.reduce((n, a) => n + (a.type === "dispatch" ? a.count : a.type === "reassign" ? 1 : 0), 0);
        if (added > 0) expect(t.replicas.length + added).to.be.at.most(maxReplicasFor(v.quorum));
        const hedges = d.actions.filter((a) => a.type === "dispatch" && (a.reason === "straggler" || a.reason === "disagreement"));
        expect(hedges.length).to.be.at.most(1);
        if (hedges.length) expect(d.bucket.tokens).to.be.at.least(0);
        if (d.consensus.reached) for (const a of d.actions) expect(["reveal", "cancel"]).to.include(a.type);
      }),
    );
  });

  it("a global slowdown cannot double the load: hedges stay within the budget plus the bucket", () => {
    // 100 tasks, q = 2, every replica becomes a straggler: each task asks for a hedge.
    let bucket: TokenBucket = tokenBucket(10);
    let base = 0;
    let hedges = 0;
    const stats = { p95CommitMs: 5 * SEC };
    for (let i = 0; i < 100; i++) {
      let t = task([]);
      const start = nextActions(t, T0, stats, bucket);
      bucket = start.bucket;
      base += start.actions.reduce((n, a) => n + (a.type === "dispatch" ? a.count : 0), 0);
      t = apply(t, start.actions, T0, start.consensus.winner?.resultHash ?? null);
      // Much later: both replicas are stragglers, decided twice (tick after tick).
      for (const later of [60, 61]) {
        const d = nextActions(t, T0 + later * SEC, stats, bucket);
        bucket = d.bucket;
        const h = d.actions.filter((a) => a.type === "dispatch" && a.reason === "straggler").length;
        hedges += h;
        t = apply(t, d.actions, T0 + later * SEC, d.consensus.winner?.resultHash ?? null);
      }
    }
    expect(base).to.equal(200);
    // 10 tokens to start with + 5 % of 200 = 20 hedges at most: +10 % load, not +100 %.
    expect(hedges).to.be.at.most(10 + 0.05 * base);
    expect(hedges).to.be.at.least(19);
  });

  describe("token bucket", () => {
    it("refills by work: 20 replicas at 5 % make exactly one token", () => {
      let b = tokenBucket(3, 0);
      for (let i = 0; i < 20; i++) b = creditBucket(b, 1, 5);
      expect(b.tokens).to.equal(1);
      expect(takeToken(b)).to.deep.equal({ tokens: 0, capacity: 3 });
      expect(takeToken({ tokens: 0.999999, capacity: 3 })).to.equal(null);
    });
    it("never holds more than its capacity", () => {
      expect(creditBucket(tokenBucket(2), 1000, 100).tokens).to.equal(2);
      expect(tokenBucket(2, 5).tokens).to.equal(2);
    });
    it("refuses bad parameters", () => {
      expect(() => creditBucket(tokenBucket(1), -1, 5)).to.throw(/dispatched/);
      expect(() => creditBucket(tokenBucket(1), 1, 101)).to.throw(/budget/);
      expect(() => tokenBucket(-1)).to.throw(/capacity/);
    });
  });

  it("defaults: adaptive, 5 % budget, one extra in fixed mode", () => {
    expect(defaultPolicyOptions).to.include({ mode: "adaptive", budgetPercent: 5, extra: 1 });
  });
});
