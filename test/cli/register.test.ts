/**
 * `concord app|dataset|pool register` and `pool consent` against a real local chain: what is printed (human and
 * --json) and what the registries then hold.
 */
import { expect } from "chai";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ZeroHash } from "ethers";
import { Chain, callCli, expectOneLineError, jsonOf, runCli, startChain } from "./harness";

/** A minimal valid WebAssembly module (header only). */
const WASM = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
const sha256 = (bytes: Buffer | string) => `0x${createHash("sha256").update(bytes).digest("hex")}`;

describe("concord app|dataset|pool register", function () {
  this.timeout(120_000);
  let chain: Chain;
  let dir: string;
  let owner: Record<string, string>;
  let scheduler: Record<string, string>;

  before(async function () {
    chain = await startChain(4);
    dir = mkdtempSync(join(tmpdir(), "concord-cli-assets-"));
    owner = { ...chain.env, CONCORD_KEY: chain.accounts[1].privateKey };
    scheduler = { ...chain.env, CONCORD_KEY: chain.accounts[2].privateKey };
  });

  after(async function () {
    await chain?.stop();
  });

  it("registers an app from its file: sha256 checksum, file:// URI, owned by the key", async function () {
    const file = join(dir, "echo.wasm");
    writeFileSync(file, WASM);
    const result = await runCli(["app", "register", "--name", "echo", "--file", file], owner);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stderr).to.equal("");
    expect(result.stdout).to.match(/^app 1 registered: "echo" \(runtime wasi\)/);
    expect(result.stdout).to.include(sha256(WASM));
    const app = await chain.apps.app(1);
    expect(app.name).to.equal("echo");
    expect(app.runtime).to.equal("wasi");
    expect(app.checksum).to.equal(sha256(WASM));
    expect(app.uri).to.equal(pathToFileURL(file).href);
    expect(await chain.apps.ownerOf(1)).to.equal(chain.accounts[1].address);
  });

  it("registers an app by checksum and URI, and a built-in sql app, with --json output", async function () {
    const checksum = sha256("remote module");
    const byChecksum = jsonOf(
      await runCli(["--json", "app", "register", "--name", "remote", "--checksum", checksum, "--uri", "https://example.org/m.wasm"], owner),
    );
    expect(byChecksum).to.include({ kind: "app", id: "2", name: "remote", runtime: "wasi", checksum, uri: "https://example.org/m.wasm" });
    expect(byChecksum.owner).to.equal(chain.accounts[1].address);
    expect(byChecksum.tx).to.match(/^0x[0-9a-f]{64}$/);

    const sql = jsonOf(await callCli(["app", "register", "--json", "--name", "sqlite", "--runtime", "sql"], owner));
    expect(sql).to.include({ id: "3", runtime: "sql", checksum: ZeroHash, uri: "" });
    expect((await chain.apps.app(3)).runtime).to.equal("sql");
  });

  it("refuses a checksum mismatch, a non-WebAssembly file and a checksum without a URI, before sending anything", async function () {
    const file = join(dir, "m.wasm");
    writeFileSync(file, WASM);
    const before = await chain.apps.count();
    expectOneLineError(
      await callCli(["app", "register", "--name", "x", "--file", file, "--checksum", sha256("other")], owner),
      /checksum mismatch: --checksum 0x[0-9a-f]{64} but .*m\.wasm has sha256 0x/,
    );
    const text = join(dir, "notes.txt");
    writeFileSync(text, "hello");
    expectOneLineError(await callCli(["app", "register", "--name", "x", "--file", text], owner), /not a WebAssembly module/);
    expectOneLineError(
      await callCli(["app", "register", "--name", "x", "--checksum", sha256("x")], owner),
      /--uri <uri> is required with --checksum/,
    );
    expectOneLineError(await callCli(["app", "register", "--name", "x"], owner), /give --file <path>/);
    expectOneLineError(await callCli(["app", "register", "--name", "x", "--file", join(dir, "missing.wasm")], owner), /no such file/);
    expectOneLineError(
      await callCli(["app", "register", "--name", "x", "--runtime", "docker", "--file", file], owner),
      /'docker' is invalid.*wasi, sql/,
    );
    expect(await chain.apps.count()).to.equal(before);
  });

  it("registers a dataset from its file, and by checksum and URI", async function () {
    const file = join(dir, "customers.csv");
    writeFileSync(file, "id,name\n1,ada\n");
    const result = await runCli(["dataset", "register", "--name", "customers", "--file", file], owner);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/^dataset 1 registered: "customers"/);
    const dataset = await chain.datasets.dataset(1);
    expect(dataset.checksum).to.equal(sha256("id,name\n1,ada\n"));
    expect(dataset.uri).to.equal(pathToFileURL(file).href);
    expect(await chain.datasets.ownerOf(1)).to.equal(chain.accounts[1].address);

    const checksum = sha256("remote");
    const json = jsonOf(
      await callCli(["--json", "dataset", "register", "--name", "remote", "--checksum", checksum, "--uri", "https://example.org/d.csv"], owner),
    );
    expect(json).to.include({ kind: "dataset", id: "2", checksum, uri: "https://example.org/d.csv" });
  });

  it("registers a pool whose scheduler is the key: consent is given at once", async function () {
    const result = await runCli(["pool", "register", "--description", "my pool", "--stake-ratio", "25", "--reward-ratio", "5"], owner);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/^workerpool 1 registered: "my pool"/);
    expect(result.stdout).to.include("consent   given");
    const pool = await chain.workerpools.workerpool(1);
    expect(pool.scheduler).to.equal(chain.accounts[1].address);
    expect(pool.workerStakeRatio).to.equal(25n);
    expect(pool.schedulerRewardRatio).to.equal(5n);
    expect(pool.schedulerConsent).to.equal(true);
  });

  it("registers a pool for another scheduler, prints what it must run, and takes its consent", async function () {
    const other = chain.accounts[2].address;
    const result = await runCli(["pool", "register", "--description", "shared", "--scheduler", other], owner);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.include("PENDING");
    expect(result.stdout).to.include(`The scheduler ${other} must run: concord pool consent 2 --key`);
    expect((await chain.workerpools.workerpool(2)).schedulerConsent).to.equal(false);

    // The owner is not the scheduler: the registry's custom error, decoded with its arguments.
    expectOneLineError(
      await callCli(["pool", "consent", "2"], owner),
      new RegExp(`transaction reverted: WorkerpoolRegistryNotScheduler\\(id=2, caller=${chain.accounts[1].address}\\)`),
    );
    const consent = jsonOf(await runCli(["--json", "pool", "consent", "2"], scheduler));
    expect(consent).to.include({ id: "2", scheduler: other, schedulerConsent: true });
    expect((await chain.workerpools.workerpool(2)).schedulerConsent).to.equal(true);

    const withdrawn = jsonOf(await callCli(["--json", "pool", "consent", "2", "--withdraw"], scheduler));
    expect(withdrawn.schedulerConsent).to.equal(false);
    expect((await chain.workerpools.workerpool(2)).schedulerConsent).to.equal(false);
  });

  it("refuses bad pool settings with one line each", async function () {
    expectOneLineError(
      await callCli(["pool", "register", "--description", "p", "--stake-ratio", "101"], owner),
      /--stake-ratio: expected a whole percentage from 0 to 100, got "101"/,
    );
    expectOneLineError(
      await callCli(["pool", "register", "--description", "p", "--scheduler", "0x1234"], owner),
      /--scheduler: not an address/,
    );
    expectOneLineError(await callCli(["pool", "register"], owner), /required option '--description <text>' not specified/);
    expectOneLineError(await callCli(["pool", "consent", "zero"], owner), /pool: expected a positive integer id/);
  });
});
