/**
 * Deployment: the library is idempotent, the deployments file round-trips, and `npm start`'s script brings up a real
 * local chain on loopback with everything deployed, then shuts down on SIGINT.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JsonRpcProvider } from "ethers";
import { DEFAULT_CATEGORIES, deployConcord } from "../../deploy/lib";
import { readDeployment, writeDeployment } from "../../deploy/deployments";
import { freePort } from "../../deploy/node";
import { Hub__factory } from "../../typechain-types";


describe("deployment", function () {
  it("deploys every contract and the default categories", async function () {
    const [deployer] = await ethers.getSigners();
    const d = await deployConcord(deployer);
    const hub = Hub__factory.connect(d.hub, deployer);
    expect(d.clerk).to.equal(d.hub);
    expect(await hub.token()).to.equal(d.token);
    expect(await hub.categoryCount()).to.equal(BigInt(DEFAULT_CATEGORIES.length));
    expect((await hub.viewCategory(0)).workClockTimeRef).to.equal(BigInt(DEFAULT_CATEGORIES[0].workClockTimeRef));
    for (const address of [d.token, d.appRegistry, d.datasetRegistry, d.workerpoolRegistry, d.matchLib, d.hub]) {
      expect(await ethers.provider.getCode(address)).to.not.equal("0x");
    }
  });

  it("is idempotent: a second run reuses every contract and adds no category", async function () {
    const [deployer] = await ethers.getSigners();
    const first = await deployConcord(deployer);
    const second = await deployConcord(deployer, {}, first);
    expect(second).to.deep.equal(first);
    expect(await Hub__factory.connect(first.hub, deployer).categoryCount()).to.equal(BigInt(DEFAULT_CATEGORIES.length));
  });

  it("redeploys what has no code any more (a restarted local chain)", async function () {
    const [deployer] = await ethers.getSigners();
    const first = await deployConcord(deployer);
    const stale = { ...first, hub: ethers.Wallet.createRandom().address };
    const second = await deployConcord(deployer, {}, stale);
    expect(second.token).to.equal(first.token);
    expect(second.hub).to.not.equal(stale.hub);
    expect(await ethers.provider.getCode(second.hub)).to.not.equal("0x");
  });

  it("writes and reads the deployments file per chain id", async function () {
    const [deployer] = await ethers.getSigners();
    const dir = mkdtempSync(join(tmpdir(), "concord-deploy-"));
    const d = await deployConcord(deployer);
    const path = writeDeployment(d, dir);
    expect(path).to.equal(join(dir, `${d.chainId}.json`));
    expect(readDeployment(d.chainId, dir)).to.deep.equal(d);
    expect(readDeployment(999, dir)).to.equal(undefined);
    expect(JSON.parse(readFileSync(path, "utf8")).hub).to.equal(d.hub);
  });

  it("npm start runs the whole network as processes, two verified requests end to end, and stops on SIGINT", async function () {
    this.timeout(180_000);
    const port = await freePort();
    const schedulerPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "concord-start-"));
    const root = join(__dirname, "..", "..");
    const child = spawn(join(root, "node_modules", ".bin", "ts-node"), ["deploy/start.ts"], {
      cwd: root,
      env: { ...process.env, CONCORD_PORT: String(port), CONCORD_SCHEDULER_PORT: String(schedulerPort), CONCORD_DEPLOYMENTS_DIR: dir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`npm start did not get ready:\n${output}`)), 160_000);
        child.stdout.on("data", () => {
          if (output.includes("The network is up. Ctrl-C stops it.")) {
            clearTimeout(timer);
            resolve();
          }
        });
        void exited.then((code) => reject(new Error(`start exited early (${code}):\n${output}`)));
      });
      const hubAddress = /Hub \/ Clerk\s+(0x[0-9a-fA-F]{40})/.exec(output)![1];
      expect(output).to.include(`http://127.0.0.1:${port}`);
      const provider = new JsonRpcProvider(`http://127.0.0.1:${port}`, undefined, { staticNetwork: true });
      const hub = Hub__factory.connect(hubAddress, provider);
      expect(await hub.categoryCount()).to.equal(BigInt(DEFAULT_CATEGORIES.length));
      const [first] = await provider.listAccounts();
      expect(await hub.balanceOf(first.address)).to.equal(ethers.parseEther("100"));
      expect(readDeployment(31337, dir)!.hub).to.equal(hubAddress);
      // the SQL request at trust 3: the verified rows, and the result served by the scheduler
      expect(output).to.include('["consumer",786.9369690265487]');
      const digest = /results\s+http:\/\/127\.0\.0\.1:\d+\/results\/(0x[0-9a-f]{64})/.exec(output)![1];
      const served = (await (await fetch(`http://127.0.0.1:${schedulerPort}/results/${digest}`)).json()) as { result: { rows: unknown[] } };
      expect(served.result.rows).to.have.length(4);
      // the echo request pushed its callback bytes to the consumer contract, and resultFor returns them on chain
      expect(output).to.include('("hello from Concord")');
      const echoTask = /WASI echo[^\n]*\n\s+task\s+(0x[0-9a-f]{64})/.exec(output)![1];
      expect(ethers.toUtf8String(await hub.resultFor(echoTask))).to.equal("hello from Concord");
      expect(output).to.match(/tx\s+finalized\s+0x[0-9a-f]{64}/);
      provider.destroy();
    } finally {
      child.kill("SIGINT");
    }
    expect(await exited).to.equal(0);
  });
});
