/**
 * The worker with a chain (a real `hardhat node`): it tops its escrow up at start, logs in only to a scheduler of its
 * own chain and Hub, and refuses apps and datasets that differ from the registries. The scheduler is still a fake.
 */
import { expect } from "chai";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseEther, type Wallet } from "ethers";
import { WorkerDaemon, type WorkerConfig } from "../../../worker";
import { WorkerError } from "../../../worker/core/errors";
import { startChain, type Chain } from "../../cli/harness";
import { FakeScheduler, appRef, assign, captureLogs, datasetRef, randomWallet } from "./harness";

describe("worker daemon: with a chain", function () {
  let chain: Chain;
  let scheduler: FakeScheduler;
  let worker: Wallet;
  let dataDir: string;
  const daemons: WorkerDaemon[] = [];
  let echoId: string;
  let mislabelledId: string;
  let sqlId: string;
  let datasetId: string;

  const daemon = (over: Partial<WorkerConfig> = {}, logs = captureLogs()): WorkerDaemon => {
    const d = new WorkerDaemon(
      {
        schedulerUrl: scheduler.url,
        signer: worker,
        dataDir,
        heartbeatMs: 200,
        backoff: { initialMs: 20, maxMs: 200, factor: 2, jitter: 0.5 },
        rpcUrl: chain.url,
        deployment: chain.deployment,
        ...over,
      },
      { logger: logs.log },
    );
    daemons.push(d);
    return d;
  };

  before(async function () {
    chain = await startChain(4);
    worker = chain.accounts[3];
    const owner = chain.accounts[1];
    const apps = chain.apps.connect(owner);
    const register = async (name: string, runtime: string, uri: string, checksum: string) => {
      const receipt = await (await apps.register(owner.address, name, runtime, uri, checksum)).wait();
      return apps.interface.parseLog(receipt!.logs[receipt!.logs.length - 1])!.args.id.toString() as string;
    };
    const echo = appRef("echo");
    echoId = await register("echo", "wasi", echo.uri, echo.checksum);
    mislabelledId = await register("not echo", "wasi", echo.uri, appRef("sieve").checksum);
    sqlId = await register("sql", "sql", "", "0x" + "00".repeat(32));
    const customers = datasetRef("customers.csv", "customers");
    const receipt = await (await chain.datasets.connect(owner).register(owner.address, "customers", customers.uri, customers.checksum)).wait();
    datasetId = chain.datasets.interface.parseLog(receipt!.logs[receipt!.logs.length - 1])!.args.id.toString();
  });
  after(async function () {
    await chain?.stop();
  });
  beforeEach(async function () {
    scheduler = await FakeScheduler.start();
    scheduler.heartbeatMs = 200;
    scheduler.hub = chain.deployment.hub;
    dataDir = await mkdtemp(join(tmpdir(), "concord-worker-chain-"));
  });
  afterEach(async function () {
    await Promise.all(daemons.splice(0).map((d) => d.close()));
    await scheduler.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("tops the free escrow balance up to minDeposit at start, and only once", async function () {
    const before = (await chain.hub.accountOf(worker.address))[0];
    expect(before).to.equal(0n);
    await daemon({ minDeposit: parseEther("5") }).start();
    expect((await chain.hub.accountOf(worker.address))[0]).to.equal(parseEther("5"));
    await daemons.pop()!.close();
    await daemon({ minDeposit: parseEther("5") }).start();
    expect((await chain.hub.accountOf(worker.address))[0]).to.equal(parseEther("5"));
  });

  it("refuses to start when the wallet cannot pay the deposit", async function () {
    try {
      await daemon({ minDeposit: parseEther("1000000") }).start();
      expect.fail("should refuse");
    } catch (e) {
      expect(e).to.be.instanceOf(WorkerError);
      expect((e as WorkerError).code).to.equal("INSUFFICIENT_FUNDS");
    }
  });

  it("runs an app whose checksum matches the registry; refuses one the scheduler mislabels", async function () {
    await daemon().start();
    const session = await scheduler.login();
    const good = assign({ app: { ...appRef("echo"), id: echoId }, args: ["registered"] });
    const mislabelled = assign({ app: { ...appRef("echo"), id: mislabelledId } });
    const wrongName = assign({
      app: { id: sqlId, runtime: "sql", uri: "", checksum: "0x" + "00".repeat(32) },
      dataset: { ...datasetRef("customers.csv", "clients"), id: datasetId },
      params: JSON.stringify({ query: "SELECT COUNT(*) FROM clients" }),
    });
    const wrongRuntime = assign({ app: { id: sqlId, runtime: "wasi", uri: appRef("echo").uri, checksum: "0x" + "00".repeat(32) } });
    for (const f of [good, mislabelled, wrongName, wrongRuntime]) session.send(f);
    expect((await session.next("commit")).replicaId).to.equal(good.replicaId);
    for (const f of [mislabelled, wrongName, wrongRuntime]) {
      const failed = await session.next("failed", (x) => x.replicaId === f.replicaId);
      expect(failed.code, failed.message).to.equal("REGISTRY_MISMATCH");
    }
  });

  it("does not log in to a scheduler of another Hub", async function () {
    scheduler.hub = randomWallet().address;
    const logs = captureLogs();
    await daemon({}, logs).start();
    await logs.waitFor((l) => l.msg.startsWith("refusing to log in"), "refusal");
    expect(scheduler.logins()).to.deep.equal([]);
  });
});
