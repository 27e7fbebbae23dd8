/**
 * worker/core: the pure parts of the daemon (reconnection delays, the digest a run commits to, the test-hook
 * behaviours, the run-slot limiter).
 */
import { expect } from "chai";
import { keccak256, toUtf8Bytes } from "ethers";
import { resultHash, resultSeal } from "../../../sdk/eip712";
import { backoffDelay, defaultBackoffOptions } from "../../../worker/core/backoff";
import { committedDigest, parseBehaviour } from "../../../worker/core/behaviour";
import { WorkerError } from "../../../worker/core/errors";
import { Limiter } from "../../../worker/core/limiter";
import { commitTo, resultDigestOf } from "../../../worker/core/result";

const DIGEST = keccak256(toUtf8Bytes("a result"));
const TASK = keccak256(toUtf8Bytes("a task"));
const WORKER = "0x" + "ab".repeat(20);

describe("worker core", function () {
  describe("backoffDelay", function () {
    const noJitter = { ...defaultBackoffOptions, jitter: 0 };
    const table: Array<[number, number]> = [
      [0, 200],
      [1, 400],
      [2, 800],
      [5, 6_400],
      [6, 10_000],
      [50, 10_000],
      [5_000, 10_000],
    ];
    for (const [attempt, expected] of table) {
      it(`waits ${expected} ms before retry #${attempt + 1} (no jitter)`, function () {
        expect(backoffDelay(attempt, noJitter, 0.7)).to.equal(expected);
      });
    }
    it("draws the delay in [d·(1 − jitter), d]", function () {
      expect(backoffDelay(0, defaultBackoffOptions, 0)).to.equal(200);
      expect(backoffDelay(0, defaultBackoffOptions, 1)).to.equal(100);
      expect(backoffDelay(10, defaultBackoffOptions, 0.5)).to.equal(7_500);
    });
  });

  describe("resultDigestOf", function () {
    it("is the directory digest for a deal without callback", function () {
      expect(resultDigestOf({ digest: DIGEST, callbackData: new Uint8Array([1, 2]) }, false)).to.equal(DIGEST);
    });
    it("is keccak256 of the callback bytes for a callback deal", function () {
      const data = toUtf8Bytes("hello world");
      expect(resultDigestOf({ digest: DIGEST, callbackData: data }, true)).to.equal(keccak256(data));
    });
    it("refuses a callback deal whose app wrote no callback-data", function () {
      expect(() => resultDigestOf({ digest: DIGEST }, true))
        .to.throw(WorkerError)
        .with.property("code", "NO_CALLBACK_DATA");
    });
  });

  it("commitTo gives the protocol's resultHash and resultSeal", function () {
    expect(commitTo(WORKER, TASK, DIGEST)).to.deep.equal({
      resultDigest: DIGEST,
      resultHash: resultHash(TASK, DIGEST),
      resultSeal: resultSeal("0x" + "ab".repeat(20), TASK, DIGEST),
    });
  });

  describe("behaviours (test hook)", function () {
    it("an honest, slow or silent worker commits the true digest; a liar keccak256 of it", function () {
      for (const b of ["honest", "slow", "silent"] as const) expect(committedDigest(DIGEST, b)).to.equal(DIGEST);
      expect(committedDigest(DIGEST, "lie")).to.equal(keccak256(DIGEST));
    });
    const table: Array<[string, ReturnType<typeof parseBehaviour>]> = [
      ["honest", { behaviour: "honest" }],
      ["lie", { behaviour: "lie" }],
      ["silent", { behaviour: "silent" }],
      ["slow", { behaviour: "slow" }],
      ["slow:2500", { behaviour: "slow", slowDelayMs: 2500 }],
      ["lie:100", undefined],
      ["slow:-1", undefined],
      ["evil", undefined],
      ["", undefined],
    ];
    for (const [text, expected] of table) {
      it(`parses ${JSON.stringify(text)}`, function () {
        expect(parseBehaviour(text)).to.deep.equal(expected);
      });
    }
  });

  describe("Limiter", function () {
    it("grants at most `max` slots, then in arrival order", async function () {
      const limiter = new Limiter(1);
      const order: string[] = [];
      const first = await limiter.acquire();
      const second = limiter.acquire().then((release) => (order.push("second"), release));
      const third = limiter.acquire().then((release) => (order.push("third"), release));
      expect(limiter.waiting).to.equal(2);
      first();
      (await second)();
      (await third)();
      expect(order).to.deep.equal(["second", "third"]);
      expect(limiter.running).to.equal(0);
    });
    it("drops a waiter whose signal aborts", async function () {
      const limiter = new Limiter(1);
      const held = await limiter.acquire();
      const controller = new AbortController();
      const waiting = limiter.acquire(controller.signal);
      controller.abort(new Error("cancelled"));
      await waiting.then(
        () => expect.fail("should be refused"),
        (e: Error) => expect(e.message).to.equal("cancelled"),
      );
      expect(limiter.waiting).to.equal(0);
      held();
      held(); // idempotent
      expect(limiter.running).to.equal(0);
    });
  });
});
