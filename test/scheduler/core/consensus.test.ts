/**
 * scheduler/core/consensus: grouping commits, the winner (largest group ≥ q, ties to the group completed first),
 * reachability with replicas still running, and the relay plan that makes the chain reach the same winner. Table rows
 * name workers by letter and results by a digit; `h(n)` is a bytes32 result hash.
 */
import { expect } from "chai";
import fc from "fast-check";
import { Commit, canReachConsensus, groupCommits, orderCommits, relayPlan } from "../../../scheduler/core/consensus";
import { isCoreError } from "../../../scheduler/core/errors";
import { quorumOf } from "../../../scheduler/core/types";

const h = (n: number) => "0x" + n.toString(16).padStart(64, "0");
/** "a1@10" = worker a committed result 1 at t=10. */
function commits(spec: string): Commit[] {
  return spec
    .split(/\s+/)
    .filter(Boolean)
    .map((s) => {
      const m = /^([a-z]+)(\d+)@(\d+)$/.exec(s)!;
      return { worker: m[1], resultHash: h(Number(m[2])), at: Number(m[3]) };
    });
}

function expectCode(f: () => unknown, code: string) {
  try {
    f();
  } catch (e) {
    expect(isCoreError(e), String(e)).to.equal(true);
    expect((e as { code: string }).code).to.equal(code);
    return;
  }
  expect.fail(`expected CoreError ${code}`);
}

describe("scheduler/core/consensus", () => {
  describe("groupCommits", () => {
    const rows: {
      name: string;
      spec: string;
      q: number;
      winner: number | null;
      winners: string[];
      divergent: string[];
      surplus?: string[];
      needed: number;
    }[] = [
      { name: "no commit: nothing reached, q still needed", spec: "", q: 2, winner: null, winners: [], divergent: [], needed: 2 },
      { name: "q = 1: the first commit wins", spec: "a1@5", q: 1, winner: 1, winners: ["a"], divergent: [], needed: 0 },
      { name: "one short of the quorum", spec: "a1@1 b1@2", q: 3, winner: null, winners: [], divergent: [], needed: 1 },
      { name: "quorum reached, a dissenter is divergent", spec: "a1@1 b2@2 c1@3", q: 2, winner: 1, winners: ["a", "c"], divergent: ["b"], needed: 0 },
      { name: "largest group wins over the one completed first", spec: "a1@1 b1@2 c2@3 d2@4 e2@5", q: 2, winner: 2, winners: ["c", "d"], divergent: ["a", "b"], surplus: ["e"], needed: 0 },
      { name: "tie in size: the group whose q-th commit came first", spec: "a1@1 c2@2 d2@3 b1@4", q: 2, winner: 2, winners: ["c", "d"], divergent: ["a", "b"], needed: 0 },
      { name: "tie in size and time: input order decides", spec: "a1@1 c2@1 b1@2 d2@2", q: 2, winner: 1, winners: ["a", "b"], divergent: ["c", "d"], needed: 0 },
      { name: "commits out of order are sorted by time", spec: "c1@30 b2@20 a1@10", q: 2, winner: 1, winners: ["a", "c"], divergent: ["b"], needed: 0 },
      { name: "a worker's second commit is ignored", spec: "a1@1 a2@2 b2@3", q: 2, winner: null, winners: [], divergent: [], needed: 1 },
      { name: "three-way split: no winner, one more needed", spec: "a1@1 b2@2 c3@3", q: 2, winner: null, winners: [], divergent: [], needed: 1 },
      { name: "surplus agreeing commits beyond q", spec: "a1@1 b1@2 c1@3 d1@4", q: 3, winner: 1, winners: ["a", "b", "c"], divergent: [], surplus: ["d"], needed: 0 },
    ];
    for (const r of rows) {
      it(r.name, () => {
        const c = groupCommits(commits(r.spec), r.q);
        expect(c.reached).to.equal(r.winner !== null);
        expect(c.winner?.resultHash ?? null).to.equal(r.winner === null ? null : h(r.winner));
        expect(c.winners).to.deep.equal(r.winners);
        expect(c.divergent).to.deep.equal(r.divergent);
        expect(c.surplus).to.deep.equal(r.surplus ?? []);
        expect(c.needed).to.equal(r.needed);
      });
    }

    it("lists groups largest first, with their completion time", () => {
      const c = groupCommits(commits("a1@1 b2@2 c2@5 d3@6 e2@7"), 2);
      expect(c.groups.map((g) => [g.resultHash, g.size, g.completedAt])).to.deep.equal([
        [h(2), 3, 5],
        [h(1), 1, null],
        [h(3), 1, null],
      ]);
      expect(c.disagreement).to.equal(true);
      expect(c.largest).to.equal(3);
    });

    it("compares result hashes and workers case-insensitively", () => {
      const c = groupCommits(
        [
          { worker: "0xAA", resultHash: "0x" + "ab".repeat(32), at: 1 },
          { worker: "0xaa", resultHash: "0x" + "ab".repeat(32), at: 2 },
          { worker: "0xBB", resultHash: "0x" + "AB".repeat(32), at: 3 },
        ],
        2,
      );
      expect(c.reached).to.equal(true);
      expect(c.winners).to.deep.equal(["0xAA", "0xBB"]);
      expect(c.winner!.resultHash).to.equal("0x" + "ab".repeat(32));
    });

    it("keeps a winner pinned by the caller while it still holds q commits", () => {
      const spec = commits("a1@1 b1@2 c2@3 d2@4 e2@5");
      expect(groupCommits(spec, 2).winner!.resultHash).to.equal(h(2));
      expect(groupCommits(spec, 2, { winner: h(1) }).winner!.resultHash).to.equal(h(1));
      // A pinned group that lost members below q no longer wins; the best complete group does.
      expect(groupCommits(commits("a1@1 c2@3 d2@4"), 2, { winner: h(1) }).winner!.resultHash).to.equal(h(2));
    });

    it("refuses a bad quorum or a malformed commit with a clear code", () => {
      expectCode(() => groupCommits([], 0), "INVALID_QUORUM");
      expectCode(() => groupCommits([], 1.5), "INVALID_QUORUM");
      expectCode(() => groupCommits([{ worker: "a", resultHash: "0x12", at: 1 }], 1), "INVALID_COMMIT");
      expectCode(() => groupCommits([{ worker: "", resultHash: h(1), at: 1 }], 1), "INVALID_COMMIT");
      expectCode(() => groupCommits([{ worker: "a", resultHash: h(1), at: NaN }], 1), "INVALID_COMMIT");
      expectCode(() => quorumOf(-1), "INVALID_QUORUM");
    });

    it("derives the quorum from trust: 0 and 1 mean one worker", () => {
      expect([0, 1, 2, 5, 3n].map((t) => quorumOf(t))).to.deep.equal([1, 1, 2, 5, 3]);
    });

    it("property: the winner is a largest complete group, and every committer is a winner, surplus or divergent", () => {
      const commitArb = fc.array(fc.record({ worker: fc.integer({ min: 0, max: 12 }), result: fc.integer({ min: 0, max: 3 }), at: fc.nat(50) }), { maxLength: 20 });
      fc.assert(
        fc.property(commitArb, fc.integer({ min: 1, max: 4 }), (raw, q) => {
          const list = raw.map((r) => ({ worker: `w${r.worker}`, resultHash: h(r.result), at: r.at }));
          const c = groupCommits(list, q);
          const distinct = orderCommits(list);
          if (c.reached) {
            expect(c.winner!.size).to.be.at.least(q);
            expect(c.winner!.size).to.equal(c.largest);
            expect(c.winners.length + c.surplus.length + c.divergent.length).to.equal(distinct.length);
          } else {
            expect(c.largest).to.be.below(q);
          }
        }),
      );
    });
  });

  describe("canReachConsensus", () => {
    const rows = [
      { spec: "", q: 2, live: 2, reachable: true },
      { spec: "", q: 2, live: 1, reachable: false },
      { spec: "a1@1", q: 2, live: 1, reachable: true },
      { spec: "a1@1 b2@2", q: 2, live: 0, reachable: false },
      { spec: "a1@1 b2@2", q: 2, live: 1, reachable: true },
      { spec: "a1@1 b2@2 c3@3", q: 3, live: 1, reachable: false },
      { spec: "a1@1 b1@2", q: 2, live: 0, reachable: true },
    ];
    for (const r of rows) {
      it(`q=${r.q}, commits "${r.spec}", ${r.live} running → ${r.reachable ? "reachable" : "unreachable"}`, () => {
        expect(canReachConsensus(groupCommits(commits(r.spec), r.q), r.live)).to.equal(r.reachable);
      });
    }
    it("refuses a negative count of running replicas", () => {
      expectCode(() => canReachConsensus(groupCommits([], 1), -1), "INVALID_TASK");
    });
  });

  describe("relayPlan", () => {
    const workersOf = (cs: Commit[]) => cs.map((c) => c.worker);

    it("relays losers (up to q − 1 per group) before exactly q winners", () => {
      const c = groupCommits(commits("a1@1 b2@2 c2@3 d1@4 e1@5 f1@6 g2@7"), 3);
      expect(c.winner!.resultHash).to.equal(h(1));
      const plan = relayPlan(c);
      // Group 2 has 3 members but is not the winner: only 2 can be relayed without completing it on chain.
      expect(workersOf(plan.relay)).to.deep.equal(["b", "c", "a", "d", "e"]);
      expect(workersOf(plan.withheld).sort()).to.deep.equal(["f", "g"]);
    });

    it("without a winner, relays every group up to q − 1 (safe whatever wins)", () => {
      const plan = relayPlan(groupCommits(commits("a1@1 b1@2 c2@3"), 3));
      expect(workersOf(plan.relay)).to.deep.equal(["a", "b", "c"]);
      expect(plan.withheld).to.deep.equal([]);
    });

    it("skips commits already on chain and counts them toward their group", () => {
      const c = groupCommits(commits("a1@1 b1@2 c2@3 d1@4"), 3);
      const plan = relayPlan(c, { onChain: ["a", "c"] });
      expect(workersOf(plan.relay)).to.deep.equal(["b", "d"]);
    });

    it("keeps the winners within the contribution cap, then fills with losers", () => {
      const c = groupCommits(commits("a1@1 b2@2 c3@3 d2@4 e2@5"), 2);
      expect(c.winner!.resultHash).to.equal(h(2));
      const plan = relayPlan(c, { maxContributions: 3 });
      expect(workersOf(plan.relay)).to.deep.equal(["a", "b", "d"]);
      expect(workersOf(plan.withheld).sort()).to.deep.equal(["c", "e"]);
    });
  });
});
