/**
 * scheduler/core/score and latency: the worker score formula, table-tested factor by factor and as a whole, and the
 * latency statistics (nearest-rank percentile, bounded window, moving average) it and the policy rely on.
 */
import { expect } from "chai";
import { isCoreError } from "../../../scheduler/core/errors";
import { ewma, percentile, pushSample } from "../../../scheduler/core/latency";
import { agreementRate, defaultScoreOptions, speedFactor, uptimeRatio, workerScore } from "../../../scheduler/core/score";

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

const close = (actual: number, expected: number) => expect(actual).to.be.closeTo(expected, 1e-12);

describe("scheduler/core/score", () => {
  describe("agreementRate = (agreed + 1) / (agreed + disagreed + 2)", () => {
    const rows: [number, number, number][] = [
      [0, 0, 0.5], // a new worker: neutral
      [1, 0, 2 / 3], // one success is not a perfect record
      [0, 1, 1 / 3],
      [8, 0, 0.9],
      [98, 0, 0.99],
      [49, 49, 0.5],
      [0, 98, 0.01],
    ];
    for (const [a, d, expected] of rows) it(`agreed ${a}, disagreed ${d} → ${expected}`, () => close(agreementRate(a, d), expected));
  });

  describe("speedFactor = ref / (ref + latency), ref = 10 s", () => {
    const rows: [number | null, number][] = [
      [0, 1],
      [10_000, 0.5],
      [30_000, 0.25],
      [2_500, 0.8],
      [null, 0.5], // never committed: counted as the reference
    ];
    for (const [l, expected] of rows) it(`latency ${l} ms → ${expected}`, () => close(speedFactor(l), expected));
  });

  describe("uptimeRatio = online / observed, clamped", () => {
    const rows: [number, number, number][] = [
      [0, 0, 1],
      [500, 1000, 0.5],
      [1000, 1000, 1],
      [1500, 1000, 1],
      [0, 1000, 0],
    ];
    for (const [on, obs, expected] of rows) it(`${on} / ${obs} → ${expected}`, () => close(uptimeRatio(on, obs), expected));
  });

  describe("workerScore = 0.6·agreement + 0.25·speed + 0.15·uptime", () => {
    const rows: { name: string; agreed: number; disagreed: number; latencyMs: number | null; uptime: number; score: number }[] = [
      { name: "a new worker", agreed: 0, disagreed: 0, latencyMs: null, uptime: 1, score: 0.6 * 0.5 + 0.25 * 0.5 + 0.15 },
      { name: "a reliable, fast, always-on worker", agreed: 98, disagreed: 0, latencyMs: 0, uptime: 1, score: 0.6 * 0.99 + 0.25 + 0.15 },
      { name: "a fast liar", agreed: 0, disagreed: 98, latencyMs: 0, uptime: 1, score: 0.6 * 0.01 + 0.25 + 0.15 },
      { name: "a slow honest worker", agreed: 98, disagreed: 0, latencyMs: 30_000, uptime: 1, score: 0.6 * 0.99 + 0.25 * 0.25 + 0.15 },
      { name: "a flaky connection", agreed: 8, disagreed: 0, latencyMs: 10_000, uptime: 0.5, score: 0.6 * 0.9 + 0.25 * 0.5 + 0.15 * 0.5 },
    ];
    for (const r of rows) it(`${r.name} → ${r.score.toFixed(4)}`, () => close(workerScore(r), r.score));

    it("ranks a slow honest worker above a fast liar", () => {
      const honest = workerScore({ agreed: 98, disagreed: 0, latencyMs: 30_000, uptime: 1 });
      const liar = workerScore({ agreed: 0, disagreed: 98, latencyMs: 0, uptime: 1 });
      expect(honest).to.be.greaterThan(liar);
    });

    it("normalises custom weights", () => {
      const o = { ...defaultScoreOptions, weights: { agreement: 2, speed: 0, uptime: 0 } };
      close(workerScore({ agreed: 8, disagreed: 0, latencyMs: 1, uptime: 0 }, o), 0.9);
    });

    it("refuses stats and weights out of range", () => {
      expectCode(() => workerScore({ agreed: -1, disagreed: 0, latencyMs: null, uptime: 1 }), "INVALID_WORKER");
      expectCode(() => workerScore({ agreed: 0, disagreed: 0.5, latencyMs: null, uptime: 1 }), "INVALID_WORKER");
      expectCode(() => workerScore({ agreed: 0, disagreed: 0, latencyMs: -5, uptime: 1 }), "INVALID_WORKER");
      expectCode(() => workerScore({ agreed: 0, disagreed: 0, latencyMs: null, uptime: 1.5 }), "INVALID_WORKER");
      expectCode(() => workerScore({ agreed: 0, disagreed: 0, latencyMs: null, uptime: 1 }, { ...defaultScoreOptions, weights: { agreement: 0, speed: 0, uptime: 0 } }), "INVALID_WORKER");
    });
  });
});

describe("scheduler/core/latency", () => {
  const oneTo100 = Array.from({ length: 100 }, (_, i) => i + 1);
  it("percentile: nearest rank, always one of the samples", () => {
    expect(percentile(oneTo100, 0.95)).to.equal(95);
    expect(percentile(oneTo100, 0.5)).to.equal(50);
    expect(percentile(oneTo100, 1)).to.equal(100);
    expect(percentile([...oneTo100].reverse(), 0.95)).to.equal(95);
    expect(percentile([7, 3, 9], 0.95, 1)).to.equal(9);
    expect(percentile([7, 3, 9], 0.34, 1)).to.equal(7);
  });

  it("percentile: null with too few samples (no hedging on a guess)", () => {
    expect(percentile([], 0.95, 0)).to.equal(null);
    expect(percentile(oneTo100.slice(0, 19), 0.95)).to.equal(null);
    expect(percentile(oneTo100.slice(0, 20), 0.95)).to.equal(19);
  });

  it("pushSample keeps the newest samples of a bounded window", () => {
    let w: number[] = [];
    for (let i = 1; i <= 5; i++) w = pushSample(w, i, 3);
    expect(w).to.deep.equal([3, 4, 5]);
  });

  it("ewma: first sample as is, then moves by alpha", () => {
    expect(ewma(null, 100)).to.equal(100);
    expect(ewma(100, 200)).to.equal(120);
    expect(ewma(100, 200, 0.5)).to.equal(150);
  });

  it("refuses negative or non-finite latencies and a bad percentile", () => {
    expectCode(() => pushSample([], -1), "INVALID_TASK");
    expectCode(() => ewma(null, Infinity), "INVALID_TASK");
    expectCode(() => percentile([1], 0), "INVALID_TASK");
    expectCode(() => percentile([NaN], 0.5), "INVALID_TASK");
  });
});
