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
import { readListedFiles, readResultFiles, unrevealable } from "../../../worker/session/files";
import { MAX_RESULT_FILES, MAX_RESULT_PATH } from "../../../sdk/session";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

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

describe("worker session files: what may be committed and kept in the record", function () {
  const budget = 1_000_000;

  it("unrevealable: an output that fits a revealed frame passes; too many files, a too long path, too many bytes do not", function () {
    expect(unrevealable([{ path: "result.json", size: 100 }], budget)).to.equal(null);
    expect(unrevealable([], budget), "an empty output").to.equal(null);
    const many = Array.from({ length: MAX_RESULT_FILES + 1 }, (_, i) => ({ path: `f${i}`, size: 0 }));
    expect(unrevealable(many.slice(0, MAX_RESULT_FILES), budget)).to.equal(null);
    const cases: [string, { path: string; size: number }[], RegExp][] = [
      ["too many files", many, /1001 files, more than the 1000/],
      ["a path too long", [{ path: "p".repeat(MAX_RESULT_PATH + 1), size: 1 }], /1025 characters long/],
      ["too many bytes", [{ path: "big", size: budget }], /bytes in a frame, more than the session allows/],
      // JSON escapes a control character six-fold: the estimate counts the path as it travels
      ["escaped paths", Array.from({ length: 200 }, (_, i) => ({ path: `${i}` + "\u0001".repeat(1000), size: 0 })), /bytes in a frame/],
    ];
    for (const [name, files, message] of cases) {
      const e = unrevealable(files, budget);
      expect(e?.code, name).to.equal("RESULT_TOO_LARGE");
      expect(e?.message, name).to.match(message);
    }
  });

  it("readListedFiles: the listed files as the reveal reads them (byte order of paths, base64), none through a link", async function () {
    const dir = await mkdtemp(join(tmpdir(), "concord-files-"));
    try {
      await mkdir(join(dir, "a"), { recursive: true });
      await writeFile(join(dir, "a", "b"), "nested");
      await writeFile(join(dir, "a.txt"), "");
      await writeFile(join(dir, "result.json"), "{}");
      const listed = readListedFiles(dir, ["result.json", "a.txt", "a/b"]);
      expect(listed).to.deep.equal(await readResultFiles(dir));
      expect(listed!.map((f) => f.path)).to.deep.equal(["a.txt", "a/b", "result.json"]);
      await symlink(join(dir, "result.json"), join(dir, "link"));
      expect(readListedFiles(dir, ["result.json", "link"]), "a link: not kept in the record").to.equal(undefined);
      expect(readListedFiles(dir, ["gone"])).to.equal(undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
