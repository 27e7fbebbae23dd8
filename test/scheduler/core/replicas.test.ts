/**
 * scheduler/core/replicas: who gets the next replicas of a task — the top half by score plus a seeded random tail,
 * never a worker already on the task, never a disconnected, lost or full one.
 */
import { expect } from "chai";
import fc from "fast-check";
import { isCoreError } from "../../../scheduler/core/errors";
import { seededRng } from "../../../scheduler/core/random";
import { Candidate, chooseReplicas, eligibleWorkers } from "../../../scheduler/core/replicas";

const worker = (name: string, score: number, o: Partial<Candidate> = {}): Candidate => ({
  worker: name,
  score,
  running: 0,
  capacity: 2,
  connected: true,
  ...o,
});

/** Ten workers w0..w9, w0 best (score 0.9 … 0.0). */
const pool = Array.from({ length: 10 }, (_, i) => worker(`w${i}`, (9 - i) / 10));

describe("scheduler/core/replicas", () => {
  describe("eligibleWorkers", () => {
    it("drops disconnected, lost, full and excluded workers, ranks the rest by score", () => {
      const candidates = [
        worker("a", 0.5),
        worker("b", 0.9, { connected: false }),
        worker("c", 0.8, { lost: true }),
        worker("d", 0.7, { running: 2, capacity: 2 }),
        worker("e", 0.6),
        worker("f", 0.95),
        worker("g", 0.99, { capacity: 0 }),
      ];
      expect(eligibleWorkers(candidates, ["F"]).map((c) => c.worker)).to.deep.equal(["e", "a"]);
    });

    it("breaks score ties by load, then by address", () => {
      const candidates = [worker("z", 0.5), worker("y", 0.5, { running: 1 }), worker("x", 0.5)];
      expect(eligibleWorkers(candidates).map((c) => c.worker)).to.deep.equal(["x", "z", "y"]);
    });
  });

  describe("chooseReplicas", () => {
    const rows: { name: string; count: number; head: string[]; tail: number }[] = [
      { name: "one replica: the best worker", count: 1, head: ["w0"], tail: 0 },
      { name: "two replicas: the best, plus one at random", count: 2, head: ["w0"], tail: 1 },
      { name: "three replicas: the two best, plus one at random", count: 3, head: ["w0", "w1"], tail: 1 },
      { name: "four replicas: two best, two random", count: 4, head: ["w0", "w1"], tail: 2 },
    ];
    for (const r of rows) {
      it(r.name, () => {
        const chosen = chooseReplicas(pool, r.count, { rng: seededRng(42) });
        expect(chosen.slice(0, r.head.length)).to.deep.equal(r.head);
        const tail = chosen.slice(r.head.length);
        expect(tail).to.have.length(r.tail);
        for (const w of tail) expect(r.head).not.to.include(w);
        expect(new Set(chosen).size).to.equal(chosen.length);
      });
    }

    it("is deterministic for a seed, and the tail varies with the seed", () => {
      const a = chooseReplicas(pool, 4, { rng: seededRng("0xtask") });
      expect(chooseReplicas(pool, 4, { rng: seededRng("0xtask") })).to.deep.equal(a);
      const tails = new Set<string>();
      for (let s = 0; s < 50; s++) tails.add(chooseReplicas(pool, 4, { rng: seededRng(s) }).slice(2).join(","));
      expect(tails.size).to.be.greaterThan(10);
    });

    it("never gives a second replica of the task to a worker that has one", () => {
      const chosen = chooseReplicas(pool, 4, { rng: seededRng(1), exclude: ["w0", "W1"] });
      expect(chosen).not.to.include("w0");
      expect(chosen).not.to.include("w1");
      expect(chosen[0]).to.equal("w2");
    });

    it("returns fewer workers than asked when fewer are eligible", () => {
      const few = [worker("a", 0.5), worker("b", 0.4, { lost: true }), worker("c", 0.3, { running: 2 })];
      expect(chooseReplicas(few, 3, { rng: seededRng(1) })).to.deep.equal(["a"]);
      expect(chooseReplicas([], 2, { rng: seededRng(1) })).to.deep.equal([]);
      expect(chooseReplicas(pool, 0, { rng: seededRng(1) })).to.deep.equal([]);
    });

    it("with headFraction 1 takes the top by score only, with 0 only random", () => {
      expect(chooseReplicas(pool, 3, { rng: seededRng(1), headFraction: 1 })).to.deep.equal(["w0", "w1", "w2"]);
      const random = chooseReplicas(pool, 3, { rng: seededRng(1), headFraction: 0 });
      expect(random).to.have.length(3);
    });

    it("the random tail reaches every eligible worker outside the head (load spreading)", () => {
      const seen = new Set<string>();
      for (let s = 0; s < 200; s++) for (const w of chooseReplicas(pool, 2, { rng: seededRng(s) }).slice(1)) seen.add(w);
      expect([...seen].sort()).to.deep.equal(pool.slice(1).map((c) => c.worker).sort());
    });

    it("refuses bad candidates, counts and random sources", () => {
      const code = (f: () => unknown) => {
        try {
          f();
        } catch (e) {
          expect(isCoreError(e)).to.equal(true);
          return (e as { code: string }).code;
        }
        return "none";
      };
      expect(code(() => chooseReplicas([worker("a", 1.5)], 1, { rng: seededRng(1) }))).to.equal("INVALID_WORKER");
      expect(code(() => chooseReplicas([worker("a", 0.5, { running: -1 })], 1, { rng: seededRng(1) }))).to.equal("INVALID_WORKER");
      expect(code(() => chooseReplicas(pool, -1, { rng: seededRng(1) }))).to.equal("INVALID_TASK");
      expect(code(() => chooseReplicas(pool, 2, { rng: () => 1 }))).to.equal("INVALID_TASK");
      expect(code(() => chooseReplicas(pool, 2, { rng: seededRng(1), headFraction: 2 }))).to.equal("INVALID_POLICY");
    });

    it("property: chosen workers are distinct, eligible, not excluded, and as many as possible", () => {
      const cand = fc.record({
        worker: fc.integer({ min: 0, max: 15 }).map((i) => `w${i}`),
        score: fc.double({ min: 0, max: 1, noNaN: true }),
        running: fc.integer({ min: 0, max: 3 }),
        capacity: fc.integer({ min: 0, max: 3 }),
        connected: fc.boolean(),
        lost: fc.boolean(),
      });
      fc.assert(
        fc.property(fc.array(cand, { maxLength: 20 }), fc.integer({ min: 0, max: 8 }), fc.array(fc.integer({ min: 0, max: 15 }).map((i) => `w${i}`), { maxLength: 4 }), fc.integer(), (cs, n, exclude, seed) => {
          const chosen = chooseReplicas(cs, n, { rng: seededRng(seed), exclude });
          const eligible = eligibleWorkers(cs, exclude).map((c) => c.worker);
          expect(new Set(chosen).size).to.equal(chosen.length);
          for (const w of chosen) expect(eligible).to.include(w);
          expect(chosen.length).to.equal(Math.min(n, eligible.length));
        }),
      );
    });
  });
});
