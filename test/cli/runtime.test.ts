/**
 * `concord run-local` and `concord verify-determinism`: the app developer's checks before publishing. The
 * determinism tests run every example app in separate processes whose TZ, LANG and environment differ, and compare
 * with a third run in this process.
 */
import { expect } from "chai";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Runtime } from "../../worker/runtime";
import { formatParams } from "../../sdk/params";
import { callCli, expectOneLineError, jsonOf, ROOT, runCli } from "./harness";

const wasm = (name: string) => join(ROOT, "apps", "build", `${name}.wasm`);
const dataset = (name: string) => join(ROOT, "apps", "datasets", name);
const SEED = `0x${"0".repeat(64)}`;

interface Case {
  what: string;
  app: string;
  args: string[];
  run: { runtime: "wasi" | "sql"; app?: string; params: string; dataset?: { path: string; name?: string } };
}

const CASES: Case[] = [
  { what: "echo", app: wasm("echo"), args: ["--arg", "İstanbul", "--arg", "straße"], run: { runtime: "wasi", app: "echo", params: formatParams({ args: ["İstanbul", "straße"] }) } },
  { what: "wordcount over a dataset", app: wasm("wordcount"), args: ["--dataset", dataset("corpus.txt")], run: { runtime: "wasi", app: "wordcount", params: "", dataset: { path: dataset("corpus.txt") } } },
  { what: "sieve", app: wasm("sieve"), args: ["--arg", "--n", "--arg", "300000"], run: { runtime: "wasi", app: "sieve", params: formatParams({ args: ["--n", "300000"] }) } },
  { what: "probe (clock, random, env, directories, file metadata)", app: wasm("probe"), args: ["--dataset", dataset("customers.csv")], run: { runtime: "wasi", app: "probe", params: "", dataset: { path: dataset("customers.csv") } } },
  {
    what: "sql over the customers CSV",
    app: "sql",
    args: ["--dataset", dataset("customers.csv"), "--query", "SELECT segment, avg(ltv) FROM customers GROUP BY segment"],
    run: { runtime: "sql", params: formatParams({ query: "SELECT segment, avg(ltv) FROM customers GROUP BY segment" }), dataset: { path: dataset("customers.csv"), name: "customers" } },
  },
  {
    what: "sql over the customers SQLite file",
    app: "sql",
    args: ["--dataset", dataset("customers.sqlite"), "--query", "SELECT segment, avg(ltv) FROM customers GROUP BY segment"],
    run: { runtime: "sql", params: formatParams({ query: "SELECT segment, avg(ltv) FROM customers GROUP BY segment" }), dataset: { path: dataset("customers.sqlite") } },
  },
];

describe("concord run-local and verify-determinism", function () {
  const runtime = new Runtime();

  describe("every example app gives one digest in separate processes with different TZ, LANG and environment", function () {
    for (const c of CASES) {
      it(c.what, async function () {
        const verified = await runCli(["verify-determinism", c.app, ...c.args, "--json"], {});
        const report = jsonOf(verified) as { deterministic: boolean; digest: string; runs: { tz: string; digest: string }[] };
        expect(report.deterministic).to.equal(true);
        expect(new Set(report.runs.map((r) => r.tz)).size).to.equal(2);
        const here = await runtime.run({ ...c.run, app: c.run.app ? await readFile(wasm(c.run.app)) : undefined, seed: SEED });
        await rm(here.outputDir, { recursive: true, force: true });
        expect(report.digest).to.equal(here.digest);
      });
    }
  });

  it("the CSV and SQLite forms of the customers dataset give the same rows", async function () {
    const query = ["--query", "SELECT segment, avg(ltv), count(*) FROM customers GROUP BY segment ORDER BY segment"];
    const csv = jsonOf(await callCli(["run-local", "sql", "--dataset", dataset("customers.csv"), ...query, "--json"], {}));
    const db = jsonOf(await callCli(["run-local", "sql", "--dataset", dataset("customers.sqlite"), ...query, "--json"], {}));
    expect(csv.digest).to.equal(db.digest);
    expect(JSON.parse(csv.result as string).rows).to.have.length(4);
  });

  describe("catches what is not deterministic, with exit code 1", function () {
    it("the nondet app (imports a host clock and random seed)", async function () {
      expectOneLineError(await runCli(["verify-determinism", wasm("nondet")], {}), /NOT deterministic: .*env\.(Date\.now|seed)/);
    });

    it("a SQL query with random()", async function () {
      const r = await runCli(["verify-determinism", "sql", "--query", "SELECT random()"], {});
      expectOneLineError(r, /NOT deterministic: non-verifiable query: random\(\)/);
    });
  });

  describe("run-local", function () {
    it("prints the digest, the files, result.json and the logs", async function () {
      const r = await callCli(["run-local", wasm("echo"), "--arg", "hi"], {});
      expect(r.code).to.equal(0);
      expect(r.stdout).to.match(/^digest {3}0x[0-9a-f]{64}$/m);
      expect(r.stdout).to.include('{"args":["hi"]}');
      expect(r.stdout).to.match(/callback 0x6869/);
      expect(r.stdout).to.match(/stdout:\n {2}hi/);
    });

    it("keeps the output in --out and reports per-file digests in --json", async function () {
      const out = join(await mkdtemp(join(tmpdir(), "concord-cli-out-")), "result");
      try {
        const report = jsonOf(await callCli(["run-local", wasm("sieve"), "--params", '{"args":["--n","100"]}', "--out", out, "--json"], {}));
        expect(report.outputDir).to.equal(out);
        expect(await readdir(out)).to.deep.equal(["result.json"]);
        expect(report.files).to.deep.equal([{ path: "result.json", size: 34, digest: (report.files as { digest: string }[])[0].digest }]);
        expect(JSON.parse(await readFile(join(out, "result.json"), "utf8"))).to.deep.equal({ largest: 97, n: 100, primes: 25 });
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    });

    const errors: [string, string[], RegExp][] = [
      ["a missing file", ["run-local", "/nonexistent/app.wasm"], /cannot read \/nonexistent\/app\.wasm: ENOENT/],
      ["a file that is not WebAssembly", ["run-local", join(ROOT, "package.json")], /invalid module: not WebAssembly/],
      ["a remote URI", ["run-local", "https://example.com/app.wasm"], /local file/],
      ["params that are not JSON", ["run-local", wasm("echo"), "--params", "--n 3"], /params: not JSON/],
      ["both --params and --arg", ["run-local", wasm("echo"), "--params", "{}", "--arg", "x"], /either --params or --arg/],
      ["a checksum mismatch", ["run-local", wasm("echo"), "--checksum", `0x${"1".repeat(64)}`], /checksum mismatch/],
      ["a bad --timeout", ["run-local", wasm("echo"), "--timeout", "soon"], /--timeout must be a positive number/],
      ["a query for a wasi app", ["run-local", wasm("echo"), "--query", "SELECT 1"], /sql runtime/],
      ["an app that fails", ["run-local", wasm("exitcode"), "--arg", "9"], /exited with code 9/],
      ["an app that runs past --timeout", ["run-local", wasm("loop"), "--timeout", "0.3"], /deadline exceeded/],
      ["a query that writes", ["run-local", "sql", "--query", "DELETE FROM customers"], /query/],
    ];
    for (const [what, argv, pattern] of errors) {
      it(`refuses ${what} with one line and exit code ≠ 0`, async function () {
        expectOneLineError(await callCli(argv, {}), pattern);
      });
    }
  });
});
