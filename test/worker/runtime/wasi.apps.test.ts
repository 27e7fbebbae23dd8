import { expect } from "chai";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { keccak256 } from "ethers";
import { parseJsonExact } from "../../../sdk/encoding";
import { Runtime, type RunRequest, type RunResult } from "../../../worker/runtime";
import { runtimeFailure } from "../../helpers/runtime";

const ROOT = join(__dirname, "..", "..", "..");
const app = (name: string) => readFile(join(ROOT, "apps", "build", `${name}.wasm`));
const DATASETS = join(ROOT, "apps", "datasets");
const SEED = "0x" + "ab".repeat(32);
const MiB = 1024 * 1024;

describe("wasi runtime: the example apps", function () {
  const runtime = new Runtime({ limits: { timeoutMs: 20_000 } });
  const results: RunResult[] = [];
  const run = async (name: string, req: Partial<RunRequest> = {}): Promise<RunResult> => {
    const r = await runtime.run({ runtime: "wasi", app: await app(name), params: "", seed: SEED, ...req });
    results.push(r);
    return r;
  };
  const resultJson = async (r: RunResult) => JSON.parse(await readFile(join(r.outputDir, "result.json"), "utf8"));
  after(async function () {
    await Promise.all(results.map((r) => rm(r.outputDir, { recursive: true, force: true })));
  });

  it("echo: its arguments as the result, their bytes as callback data, stdout kept for the logs", async function () {
    const r = await run("echo", { params: JSON.stringify({ args: ["hello", "wörld", ""] }) });
    expect(await resultJson(r)).to.deep.equal({ args: ["hello", "wörld", ""] });
    expect(Buffer.from(r.callbackData!).toString("utf8")).to.equal("hello wörld ");
    expect(Buffer.from(r.stdout).toString("utf8")).to.include("hello wörld");
    expect(r.files.map((f) => f.path)).to.deep.equal(["callback-data", "result.json"]);
    expect(keccak256(r.callbackData!)).to.match(/^0x[0-9a-f]{64}$/);
  });

  it("wordcount: counts the dataset read from the read-only /in", async function () {
    const r = await run("wordcount", { dataset: { path: join(DATASETS, "corpus.txt") } });
    const out = await resultJson(r);
    const text = await readFile(join(DATASETS, "corpus.txt"), "utf8");
    expect(out.bytes).to.equal(Buffer.byteLength(text));
    expect(out.words).to.equal(text.match(/[A-Za-z0-9]+/g)!.length);
    expect(out.top[0]).to.deep.equal(["the", (text.match(/\bthe\b/gi) ?? []).length]);
  });

  it("sieve: the number of primes below N", async function () {
    const r = await run("sieve", { params: JSON.stringify({ args: ["--n", "1000000"] }) });
    expect(await resultJson(r)).to.deep.equal({ largest: 999983, n: 1000000, primes: 78498 });
  });

  it("the same app, params and seed give the same digest; another dataset gives another", async function () {
    const a = await run("wordcount", { dataset: { path: join(DATASETS, "corpus.txt") } });
    const b = await run("wordcount", { dataset: { path: join(DATASETS, "corpus.txt") } });
    const c = await run("wordcount", { dataset: { path: join(DATASETS, "customers.csv") } });
    expect(a.digest).to.equal(b.digest);
    expect(c.digest).not.to.equal(a.digest);
  });

  describe("probe: nothing of the host reaches the app", function () {
    let probe: Record<string, any>;
    let exact: Record<string, any>; // the same, with integers as bigint (clock readings exceed 2^53)
    before(async function () {
      const r = await run("probe", { dataset: { path: join(DATASETS, "customers.csv") } });
      probe = await resultJson(r);
      exact = parseJsonExact(await readFile(join(r.outputDir, "result.json"), "utf8")) as Record<string, any>;
    });

    it("sees the fixed environment and arguments only", function () {
      expect(probe.args).to.deep.equal(["app"]);
      expect(probe.env).to.deep.equal(["HOME=/", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TZ=UTC", "CONCORD_DATASET=/in/dataset"]);
      expect(probe.preopens).to.deep.equal(["/in", "/out"]);
    });

    it("reads a virtual clock that starts at 2000-01-01 and ticks 1 ms per reading", function () {
      const { realtime, monotonic } = exact.clocks;
      expect(realtime.resolution).to.equal(1_000_000n);
      for (const clock of [realtime, monotonic]) expect(clock.times[1] - clock.times[0]).to.equal(1_000_000n);
      expect(realtime.times[0] / 1_000_000_000n).to.equal(946_684_800n);
    });

    it("lists directories sorted by name and reads no inode, device or timestamp", function () {
      expect(probe.readdir.out.map((e: { name: string }) => e.name)).to.deep.equal(["a", "b", "c"]);
      expect(probe.readdir.in.map((e: { name: string }) => e.name)).to.deep.equal(["dataset"]);
      for (const st of [probe.dataset, probe.outFileStat, probe.dirs.in, probe.dirs.out]) {
        expect([st.dev, st.ino, st.atim, st.mtim, st.ctim, st.nlink]).to.deep.equal([0, 0, 0, 0, 0, 1]);
      }
      expect(probe.dataset.size).to.be.greaterThan(0);
    });

    it("draws randomness from the task seed: the same seed the same bytes, another seed others", async function () {
      const again = await resultJson(await run("probe", { dataset: { path: join(DATASETS, "customers.csv") } }));
      const other = await resultJson(await run("probe", { seed: "0x" + "cd".repeat(32), dataset: { path: join(DATASETS, "customers.csv") } }));
      expect(again).to.deep.equal(probe);
      expect(other.random).not.to.equal(probe.random);
      expect({ ...other, random: probe.random }).to.deep.equal(probe);
    });

    it("sees stdin, stdout and stderr as the same character devices everywhere", function () {
      expect(probe.fdstat.slice(0, 3).map((s: { filetype: number }) => s.filetype)).to.deep.equal([2, 2, 2]);
    });
  });

  it("writein: /in is read-only (create, write, open for writing, unlink, mkdir all fail with EROFS)", async function () {
    const r = await run("writein", { dataset: { path: join(DATASETS, "corpus.txt") } });
    const errnos = await resultJson(r);
    for (const [attempt, errno] of Object.entries(errnos)) expect(errno, attempt).to.equal(69);
    expect((await readFile(join(DATASETS, "corpus.txt"), "utf8")).length).to.be.greaterThan(0);
  });

  describe("limits: each abuse is stopped with its own error, and the process keeps serving", function () {
    it("loop: killed at the deadline", async function () {
      const e = await runtimeFailure(run("loop", { limits: { timeoutMs: 500 } }));
      expect(e.code).to.equal("DEADLINE_EXCEEDED");
    });

    it("membomb: refused at the memory limit", async function () {
      const e = await runtimeFailure(run("membomb", { limits: { memoryBytes: 64 * MiB } }));
      expect(e.code).to.equal("MEMORY_EXCEEDED");
      expect(e.message).to.include("limit 65536 KiB");
    });

    it("bigout: refused at the output limit, its partial output removed", async function () {
      const e = await runtimeFailure(run("bigout", { limits: { outputBytes: 4 * MiB } }));
      expect(e.code).to.equal("OUTPUT_TOO_LARGE");
    });

    it("exitcode: a non-zero exit names the code and the last stderr line", async function () {
      const e = await runtimeFailure(run("exitcode", { params: JSON.stringify({ args: ["7"] }) }));
      expect(e.code).to.equal("NON_ZERO_EXIT");
      expect(e.message).to.match(/code 7; stderr: .*7/);
    });

    it("nondet: refused before it runs, for importing a host clock and random seed", async function () {
      const e = await runtimeFailure(run("nondet"));
      expect(e.code).to.equal("NON_DETERMINISTIC_IMPORT");
    });

    it("after all of them, an honest app still runs and gives the same digest as before", async function () {
      const r = await run("sieve", { params: JSON.stringify({ args: ["--n", "1000000"] }) });
      expect(r.digest).to.equal(results.find((x) => x.files.length === 1 && x !== r && x.outputBytes === r.outputBytes)?.digest);
    });
  });
});
