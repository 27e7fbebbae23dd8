/**
 * Gas snapshot: the gas of every external function on its happy path and the totals of a whole task.
 * `npm run gas` rewrites `gas-snapshot.json`; otherwise this test fails when the committed snapshot is stale, so
 * every change shows its gas diff in review.
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture, clearSnapshots } from "@nomicfoundation/hardhat-network-helpers";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { ContractTransactionResponse, parseEther } from "ethers";
import { deployFixture, Fixture, requestOrder, appOrder, signedOrders } from "../helpers/fixture";
import { TaskDriver, digestOf } from "../helpers/driver";
import { permitSignature } from "../helpers/permit";
import { callbackDigest } from "../../sdk/eip712";
import { ResultStoreConsumer__factory } from "../../typechain-types";

const SNAPSHOT = join(__dirname, "..", "..", "gas-snapshot.json");
const UPDATE = process.env.UPDATE_GAS_SNAPSHOT === "1";

/** Fixed salts: calldata gas depends on its bytes, so the snapshot needs orders that are the same on every run. */
function fixed(label: string, request: Record<string, unknown> = {}) {
  return {
    app: { salt: ethers.id(`${label}/app`) },
    dataset: { salt: ethers.id(`${label}/dataset`) },
    workerpool: { salt: ethers.id(`${label}/workerpool`) },
    request: { salt: ethers.id(`${label}/request`), ...request },
  };
}

/** A fixed permit deadline, far in the future. */
const PERMIT_DEADLINE = 2n ** 40n;

async function gasOf(tx: Promise<ContractTransactionResponse> | ContractTransactionResponse): Promise<number> {
  const receipt = await (await tx).wait();
  return Number(receipt!.gasUsed);
}

describe("gas snapshot", function () {
  const measured: Record<string, number> = {};
  let f: Fixture;
  let d: TaskDriver;

  // Gas depends on calldata bytes, which depend on contract addresses (EIP-712 domain, signatures): start from
  // genesis so that the addresses, hence the figures, are the same whichever test files ran before.
  before(async function () {
    await network.provider.request({ method: "hardhat_reset", params: [] });
    await clearSnapshots();
  });

  async function fresh() {
    f = await loadFixture(deployFixture);
    d = new TaskDriver(f);
  }

  /** Runs one whole task of each kind; `label` names the scenario in the snapshot. */
  async function singleWorker(label: string, request: Record<string, unknown>, record: boolean) {
    const m = await d.match(fixed(`single ${label}`, { trust: 1n, ...request }));
    const match = await gasOf(m.tx);
    const caf = await gasOf(d.contributeAndFinalize(f.workers[0], m.dealId, 0, digestOf("r")));
    if (record) {
      measured["matchOrders"] = match;
      measured["contributeAndFinalize"] = caf;
    }
    measured[`total: single-worker task, ${label}`] = match + caf;
  }

  async function threeWorkers(label: string, request: Record<string, unknown>, record: boolean) {
    const m = await d.match(fixed(`three ${label}`, { trust: 3n, ...request }));
    const task = d.taskId(m.dealId, 0);
    const digest = digestOf("r");
    const contribute = [];
    for (const w of f.workers.slice(0, 3)) contribute.push(await gasOf(d.contribute(w, m.dealId, 0, digest)));
    const reveal = [];
    for (const w of f.workers.slice(0, 3)) reveal.push(await gasOf(d.reveal(w, task, digest)));
    const finalize = await gasOf(d.finalize(task, "0x1234"));
    const match = await gasOf(m.tx);
    if (record) {
      measured["contribute (first, lazy initialize)"] = contribute[0];
      measured["contribute (second)"] = contribute[1];
      measured["contribute (reaching consensus)"] = contribute[2];
      measured["reveal (first)"] = reveal[0];
      measured["reveal (next)"] = reveal[1];
      measured["finalize (3 winners)"] = finalize;
    }
    measured[`total: 3-worker task, one transaction per worker, ${label}`] =
      match + contribute.reduce((a, b) => a + b) + reveal.reduce((a, b) => a + b) + finalize;
  }

  async function threeWorkersRelayed(label: string, request: Record<string, unknown>, record: boolean) {
    const m = await d.match(fixed(`relayed ${label}`, { trust: 3n, ...request }));
    const task = d.taskId(m.dealId, 0);
    const digest = digestOf("r");
    const workers = f.workers.slice(0, 3);
    const items = [];
    for (const w of workers) items.push(await d.relayedContribution(w, m.dealId, 0, digest));
    const contributeBatch = await gasOf(f.hub.connect(f.scheduler).contributeBatch(items));
    const reveals = [];
    for (const w of workers) reveals.push(await d.relayedReveal(w, task, digest));
    const revealBatch = await gasOf(f.hub.connect(f.scheduler).revealBatch(reveals));
    const finalize = await gasOf(d.finalize(task, "0x1234"));
    if (record) {
      measured["contributeBatch (3 workers)"] = contributeBatch;
      measured["revealBatch (3 workers)"] = revealBatch;
    }
    measured[`total: 3-worker task, batched relay, ${label}`] = (await gasOf(m.tx)) + contributeBatch + revealBatch + finalize;
  }

  // "first task": fresh deployment, owners never paid before and an empty kitty (one-time storage costs).
  // "steady": the same parties' next task, as in production. "no dataset": app + workerpool only.
  for (const [name, run] of [
    ["single worker task (trust 1)", singleWorker],
    ["3 agreeing workers, one transaction each", threeWorkers],
    ["3 agreeing workers through the batched relay", threeWorkersRelayed],
  ] as const) {
    it(name, async function () {
      await fresh();
      await run("with dataset, first task", {}, true);
      await run("with dataset, steady", {}, false);
      await run("no dataset, steady", { dataset: 0n, datasetmaxprice: 0n }, false);
    });
  }

  it("finalize with a callback", async function () {
    await fresh();
    const consumer = await new ResultStoreConsumer__factory(f.owner).deploy(await f.hub.getAddress());
    const m = await d.match(fixed("callback", { trust: 1n, callback: await consumer.getAddress() }));
    const data = ethers.AbiCoder.defaultAbiCoder().encode(["uint256"], [42]);
    measured["contributeAndFinalize (with callback)"] = await gasOf(
      d.contributeAndFinalize(f.workers[0], m.dealId, 0, callbackDigest(data), "0x", data),
    );
    expect(await consumer.received(), "the callback must have succeeded").to.equal(1n);
  });

  it("claim, initialize, reopen", async function () {
    await fresh();
    const m = await d.match(fixed("claim", { trust: 3n, volume: 5n }));
    measured["initialize"] = await gasOf(f.hub.connect(f.scheduler).initialize(m.dealId, 1));
    measured["initializeBatch (2 tasks)"] = await gasOf(f.hub.connect(f.scheduler).initializeBatch(m.dealId, [2, 3]));
    const digest = digestOf("r");
    for (const w of f.workers.slice(0, 3)) await d.contribute(w, m.dealId, 1, digest);
    await d.advanceToRevealDeadline(d.taskId(m.dealId, 1));
    measured["reopen (3 silent winners)"] = await gasOf(f.hub.connect(f.scheduler).reopen(d.taskId(m.dealId, 1)));
    await d.advanceToFinalDeadline(m.dealId);
    measured["claim (never initialized, empty kitty)"] = await gasOf(f.hub.claim(m.dealId, 0));
    measured["claim (never initialized)"] = await gasOf(f.hub.claim(m.dealId, 4));
    measured["claim (3 contributions)"] = await gasOf(f.hub.claim(m.dealId, 1));
    measured["claimDeal (2 remaining tasks)"] = await gasOf(f.hub.claimDeal(m.dealId));
  });

  it("escrow, orders and registries", async function () {
    await fresh();
    const hub = f.hub.connect(f.other);
    measured["deposit"] = await gasOf(hub.deposit(parseEther("1")));
    measured["depositFor"] = await gasOf(hub.depositFor(f.workers[5].address, parseEther("1")));
    measured["withdraw"] = await gasOf(hub.withdraw(parseEther("1")));
    const deadline = PERMIT_DEADLINE;
    const permit = await permitSignature(f, f.other.address, parseEther("1"), deadline);
    measured["depositWithPermit"] = await gasOf(hub.depositWithPermit(parseEther("1"), deadline, permit.v, permit.r, permit.s));
    measured["incrementOrderNonce"] = await gasOf(hub.incrementOrderNonce());
    const req = requestOrder(f, { salt: ethers.id("presign/request") });
    measured["presignRequestOrder"] = await gasOf(f.hub.connect(f.requester).presignRequestOrder({ ...req, sign: "0x" }));
    measured["cancelRequestOrder"] = await gasOf(f.hub.connect(f.requester).cancelRequestOrder({ ...req, sign: "0x" }));
    const app = appOrder(f, { salt: ethers.id("presign/app") });
    measured["presignAppOrder"] = await gasOf(f.hub.connect(f.appOwner).presignAppOrder({ ...app, sign: "0x" }));
    measured["cancelAppOrder"] = await gasOf(f.hub.connect(f.appOwner).cancelAppOrder({ ...app, sign: "0x" }));
    measured["createCategory"] = await gasOf(f.hub.createCategory("XXL", 86400));
    measured["AppRegistry.register"] = await gasOf(
      f.apps.register(f.other.address, "app", "wasi", "file://app.wasm", ethers.id("app")),
    );
    measured["DatasetRegistry.register"] = await gasOf(
      f.datasets.register(f.other.address, "data", "file://data.csv", ethers.id("data")),
    );
    measured["WorkerpoolRegistry.register"] = await gasOf(
      f.workerpools.register(f.other.address, "pool", f.other.address, 30, 10),
    );
    measured["WorkerpoolRegistry.configure"] = await gasOf(f.workerpools.connect(f.other).configure(2, f.other.address, 20, 5));

    // Deposit-and-match with a permit, for a requester that never deposited.
    const newcomer = f.other;
    const total = parseEther("13");
    const permit2 = await permitSignature(f, newcomer.address, total, deadline);
    const orders = await signedOrders(f, {
      ...fixed("depositAndMatch", { requester: newcomer.address, beneficiary: newcomer.address, nonce: 1n }),
      requesterSigner: newcomer,
    });
    measured["depositAndMatchOrders"] = await gasOf(
      f.hub
        .connect(newcomer)
        .depositAndMatchOrders(total, deadline, permit2.v, permit2.r, permit2.s, orders.app, orders.dataset, orders.workerpool, orders.request),
    );
  });

  after(function () {
    if (Object.keys(measured).length === 0) return;
    const sorted = Object.fromEntries(Object.entries(measured).sort(([a], [b]) => a.localeCompare(b)));
    if (UPDATE || !existsSync(SNAPSHOT)) {
      writeFileSync(SNAPSHOT, JSON.stringify(sorted, null, 2) + "\n");
      console.log(`      gas snapshot written to ${SNAPSHOT}`);
    }
    console.table(sorted);
  });

  it("matches the committed snapshot (run `npm run gas` to update it)", function () {
    if (UPDATE) this.skip();
    const committed = JSON.parse(readFileSync(SNAPSHOT, "utf8")) as Record<string, number>;
    const sorted = Object.fromEntries(Object.entries(measured).sort(([a], [b]) => a.localeCompare(b)));
    expect(sorted, "gas snapshot is stale: run `npm run gas` and commit gas-snapshot.json").to.deep.equal(committed);
  });
});
