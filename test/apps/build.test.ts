/**
 * apps/: the committed WebAssembly apps and datasets are exactly what their sources build to, the deterministic
 * apps import nothing but WASI, `nondet` imports the host's clock and entropy, and each deterministic app does its
 * job when run once with plain node:wasi (the abuse apps loop, membomb and bigout are left to the runtime's tests).
 */
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import initSqlJs from "sql.js";
import { APPS_DIR, CORPUS, CUSTOMERS_CSV, CUSTOMERS_SQLITE, checkOutputs, wasmPath } from "../../apps/build";
import { CUSTOMER_COLUMNS } from "../../apps/tools/datasets";
import { APPS, WASI_MODULE } from "../../apps/tools/manifest";
import { RunOptions, RunResult, SANDBOX_ENV, runWasi } from "./runWasi";

// ---------------------------------------------------------------------------------------------------------- helpers

const modules = new Map<string, WebAssembly.Module>();

function moduleOf(name: string): WebAssembly.Module {
  let module = modules.get(name);
  if (!module) {
    module = new WebAssembly.Module(readFileSync(join(APPS_DIR, wasmPath(name))));
    modules.set(name, module);
  }
  return module;
}

const importsOf = (name: string) => WebAssembly.Module.imports(moduleOf(name)).map((i) => `${i.module}.${i.name}`);

/** Runs an app, hands the result to `check`, then removes the temp dirs. */
async function run(name: string, options: RunOptions, check: (r: RunResult) => Promise<void> | void): Promise<void> {
  const result = await runWasi(moduleOf(name), options);
  try {
    await check(result);
  } finally {
    await result.cleanup();
  }
}

/** The wordcount rules, restated in plain JS for comparison. */
function referenceWordcount(text: Buffer): unknown {
  const words = (text.toString("latin1").match(/[A-Za-z0-9]+/g) ?? []).map((w) => w.toLowerCase());
  const counts = new Map<string, number>();
  for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(0, 10);
  const newlines = text.filter((b) => b === 0x0a).length;
  const lines = newlines + (text.length > 0 && text[text.length - 1] !== 0x0a ? 1 : 0);
  return { bytes: text.length, lines, top, words: words.length };
}

// ------------------------------------------------------------------------------------------------------------ build

describe("apps: build", function () {
  this.timeout(60_000);

  it("rebuilds every committed module and dataset byte for byte", async () => {
    const { differing, outputs } = await checkOutputs();
    expect(differing, "outputs that differ (run: npx ts-node apps/build.ts)").to.deep.equal([]);
    expect(outputs.map((o) => o.path)).to.include.members([wasmPath("echo"), CUSTOMERS_CSV, CUSTOMERS_SQLITE]);
  });

  for (const app of APPS) {
    it(`${app.name} is a WASI command: exports _start and memory, no _initialize`, () => {
      const exports = WebAssembly.Module.exports(moduleOf(app.name)).map((e) => `${e.kind}:${e.name}`);
      expect(exports).to.include.members(["function:_start", "memory:memory"]);
      expect(exports).to.not.include("function:_initialize");
    });
  }

  for (const app of APPS.filter((a) => a.deterministic)) {
    it(`${app.name} imports only ${WASI_MODULE} functions`, () => {
      const imports = WebAssembly.Module.imports(moduleOf(app.name));
      expect(imports.filter((i) => i.module !== WASI_MODULE || i.kind !== "function")).to.deep.equal([]);
    });
  }

  it("nondet imports the host's clock and entropy from env", () => {
    expect(importsOf("nondet")).to.include.members(["env.Date.now", "env.seed"]);
  });
});

// ------------------------------------------------------------------------------------------------------------- runs

describe("apps: smoke runs under node:wasi", function () {
  this.timeout(30_000);

  it("echo writes its arguments as JSON and, joined by a space, as callback data", async () => {
    const args = ['say "hi"', "tab\there\nnewline", "é😀", "\u0001\\"];
    await run("echo", { args }, async (r) => {
      expect(r.code).to.equal(0);
      expect(r.outFiles).to.deep.equal(["callback-data", "result.json"]);
      expect(r.result).to.deep.equal({ args });
      expect((await r.readOut("callback-data")).toString("utf8")).to.equal(args.join(" "));
      expect(r.stdout).to.equal(args.join(" ") + "\n");
    });
  });

  it("echo with no arguments writes an empty list and empty callback data", async () => {
    await run("echo", {}, async (r) => {
      expect(r.result).to.deep.equal({ args: [] });
      expect((await r.readOut("callback-data")).length).to.equal(0);
    });
  });

  it("wordcount counts bytes, lines, words and the top 10 of the corpus", async () => {
    const corpus = readFileSync(join(APPS_DIR, CORPUS));
    await run("wordcount", { dataset: corpus }, (r) => {
      expect(r.code).to.equal(0);
      expect(r.result).to.deep.equal(referenceWordcount(corpus));
      expect((r.result as { top: unknown[] }).top).to.have.length(10);
    });
  });

  it("wordcount lower-cases, splits on non-ASCII bytes, breaks count ties by word, counts an unterminated line", async () => {
    const text = Buffer.from("B b a A\ncafé 42 x-ray\r\nZ9", "utf8");
    await run("wordcount", { dataset: text }, (r) => {
      expect(r.result).to.deep.equal({
        bytes: text.length,
        lines: 3,
        top: [
          ["a", 2],
          ["b", 2],
          ["42", 1],
          ["caf", 1],
          ["ray", 1],
          ["x", 1],
          ["z9", 1],
        ],
        words: 9,
      });
    });
  });

  it("wordcount of an empty dataset is all zeros", async () => {
    await run("wordcount", { dataset: "" }, (r) => {
      expect(r.result).to.deep.equal({ bytes: 0, lines: 0, top: [], words: 0 });
    });
  });

  it("sieve counts the primes up to one million by default", async () => {
    await run("sieve", {}, (r) => {
      expect(r.code).to.equal(0);
      expect(r.result).to.deep.equal({ largest: 999983, n: 1000000, primes: 78498 });
    });
  });

  it("sieve gives the same answer whatever the number of rounds, and null as largest below 2", async () => {
    await run("sieve", { args: ["--n", "100", "--rounds", "3"] }, (r) => {
      expect(r.result).to.deep.equal({ largest: 97, n: 100, primes: 25 });
    });
    await run("sieve", { args: ["--n=1"] }, (r) => {
      expect(r.result).to.deep.equal({ largest: null, n: 1, primes: 0 });
    });
  });

  for (const bad of [["--n", "ten"], ["--n", "200000001"], ["--rounds", "0"], ["--n"], ["--size", "5"]]) {
    it(`sieve refuses ${JSON.stringify(bad)} with exit code 2 and no result`, async () => {
      await run("sieve", { args: bad }, (r) => {
        expect(r.code).to.equal(2);
        expect(r.outFiles).to.deep.equal([]);
        expect(r.stderr).to.match(/^sieve: .+\nusage: sieve/);
      });
    });
  }

  it("exitcode exits with 3 by default and with the code it is given", async () => {
    await run("exitcode", {}, (r) => {
      expect(r.code).to.equal(3);
      expect(r.stderr).to.equal("exitcode: exiting with code 3\n");
    });
    await run("exitcode", { args: ["0"] }, (r) => {
      expect(r.code).to.equal(0);
    });
    await run("exitcode", { args: ["256"] }, (r) => {
      expect(r.code).to.equal(2);
      expect(r.stderr).to.match(/must be an integer in 0\.\.255/);
    });
  });

  it("probe reports argv, env, preopens, clocks, random bytes, listings and stats", async () => {
    await run("probe", { args: ["x"], dataset: "data" }, (r) => {
      expect(r.code).to.equal(0);
      const p = r.result as Record<string, any>;
      expect(Object.keys(p)).to.deep.equal([
        "args",
        "clocks",
        "dataset",
        "dirs",
        "env",
        "fdstat",
        "outFileStat",
        "preopens",
        "random",
        "readdir",
      ]);
      expect(p.args).to.deep.equal(["app", "x"]);
      expect(p.env).to.have.members(
        Object.entries({ ...SANDBOX_ENV, CONCORD_DATASET: "/in/dataset" }).map(([k, v]) => `${k}=${v}`),
      );
      expect(p.preopens).to.deep.equal(["/in", "/out"]);
      expect(p.random).to.match(/^[0-9a-f]{32}$/);
      expect(p.clocks.realtime.times).to.have.length(2);
      expect(p.clocks.monotonic.times).to.have.length(2);
      expect(p.dataset).to.include({ size: 4, filetype: 4 });
      expect(p.readdir.in.map((e: { name: string }) => e.name)).to.deep.equal(["dataset"]);
      expect(p.readdir.out.map((e: { name: string }) => e.name)).to.have.members(["a", "b", "c"]);
      expect(p.fdstat.map((s: { fd: number }) => s.fd)).to.deep.equal([0, 1, 2, 3, 4]);
      expect(r.outFiles).to.deep.equal(["a", "b", "c", "result.json"]);
    });
  });

  it("writein reports an errno for each attempt to change /in instead of trapping", async () => {
    await run("writein", { dataset: "data" }, (r) => {
      expect(r.code).to.equal(0);
      const report = r.result as Record<string, unknown>;
      expect(Object.keys(report)).to.deep.equal([
        "createFile",
        "mkdir",
        "openDatasetForWrite",
        "unlinkDataset",
        "writeCreated",
        "writeDataset",
      ]);
      for (const errno of Object.values(report)) expect(errno).to.be.a("number");
    });
  });
});

// --------------------------------------------------------------------------------------------------------- datasets

describe("apps: datasets", () => {
  it("customers.csv and customers.sqlite hold the same 2000 rows, with typed columns in SQLite", async () => {
    const csv = readFileSync(join(APPS_DIR, CUSTOMERS_CSV), "utf8");
    const lines = csv.trimEnd().split("\n");
    expect(lines[0]).to.equal(CUSTOMER_COLUMNS.join(","));
    expect(lines).to.have.length(2001);

    const SQL = await initSqlJs();
    const db = new SQL.Database(readFileSync(join(APPS_DIR, CUSTOMERS_SQLITE)));
    try {
      const [{ values }] = db.exec(
        "SELECT id, name, segment, country, printf('%.2f', ltv), signup_year, typeof(id), typeof(ltv), typeof(signup_year) FROM customers ORDER BY id",
      );
      expect(values).to.have.length(2000);
      expect(values.map((v) => v.slice(0, 6).join(","))).to.deep.equal(lines.slice(1));
      expect(new Set(values.map((v) => v.slice(6).join(",")))).to.deep.equal(new Set(["integer,real,integer"]));
      const segments = db.exec("SELECT DISTINCT segment FROM customers ORDER BY segment")[0].values.flat();
      expect(segments).to.deep.equal(["consumer", "enterprise", "smb", "startup"]);
    } finally {
      db.close();
    }
  });
});
