/**
 * The floor: what a request costs with nothing but the protocol's own work, in the same run, on the same chain, with
 * the same apps. A bare ethers script does, strictly one after the other and each transaction awaited for its receipt
 * (as the scheduler does): sign the request order, `matchOrders`, run the app once (`Runtime.run`, warm, in this
 * process), have q workers sign their Contributions and send one `contributeBatch`, have them sign their Reveals and
 * send one `revealBatch`, then `finalize`. No order book, no chain watcher, no tick, no WebSocket, no hedged replica.
 *
 * It uses a pool of its own (registered by another account, which is its owner and consenting scheduler), so the
 * scheduler process never sees its deals as its own and the two never share a key or a nonce. Its workers are other
 * development accounts than the cluster's; they only sign, the pool's scheduler key sends everything (relayed
 * contributions and reveals, as in the system).
 */
import { rm, readFile } from "node:fs/promises";
import { join } from "node:path";
import { toUtf8Bytes, type TypedDataDomain, type Wallet } from "ethers";
import type { Examples } from "../../deploy/cluster";
import type { LocalNetwork } from "../../deploy/network";
import { domain, signOrder, taskId as taskIdOf, type AppOrder, type DatasetOrder, type Signed, type WorkerpoolOrder } from "../../sdk/eip712";
import {
  buildAppOrder,
  buildDatasetOrder,
  buildRequestOrder,
  buildWorkerpoolOrder,
  EMPTY_DATASET_ORDER,
  relayedContribution,
  relayedReveal,
} from "../../sdk/orders";
import { formatParams } from "../../sdk/params";
import { RESULT_FILE, Runtime } from "../../worker/runtime";
import { Hub__factory, WorkerpoolRegistry__factory, type Hub } from "../../typechain-types";
import { E2eBenchError } from "./errors";
import { appBytes, CUSTOMERS_DATASET, type Variant } from "./workloads";

export interface FloorAccounts {
  /** owner of the apps and the dataset (signs their orders) */
  assetOwner: Wallet;
  /** owner and scheduler of the floor's pool: sends every transaction */
  scheduler: Wallet;
  /** sign Contributions and Reveals (as many as the highest trust measured) */
  workers: Wallet[];
  requester: Wallet;
}

/** The floor's steps, in ms, in the order they run. */
export interface FloorSteps {
  /** sign the request order */
  request: number;
  /** matchOrders sent and confirmed */
  match: number;
  /** Runtime.run of the app */
  run: number;
  /** q Contribution signatures + contributeBatch confirmed */
  contribute: number;
  /** q Reveal signatures + revealBatch confirmed */
  reveal: number;
  /** finalize confirmed */
  finalize: number;
}

export const FLOOR_STEPS: (keyof FloorSteps)[] = ["request", "match", "run", "contribute", "reveal", "finalize"];

export interface FloorRun {
  ms: number;
  steps: FloorSteps;
  digest: string;
  /** /out/result.json of the run */
  resultJson: string;
}

const now = () => performance.now();

export class Floor {
  private readonly runtime = new Runtime();
  private readonly modules = new Map<string, Uint8Array | undefined>();
  private nonce = 0n;

  private constructor(
    private readonly examples: Examples,
    private readonly accounts: FloorAccounts,
    private readonly dom: TypedDataDomain,
    private readonly hub: Hub,
    private readonly orders: { apps: Record<string, Signed<AppOrder>>; dataset: Signed<DatasetOrder>; pool: Signed<WorkerpoolOrder> },
    /** `finalize`'s `results` is `${resultsBase}/results/<digest>`, the same length as the scheduler's */
    private readonly resultsBase: string,
  ) {}

  /** Registers the floor's pool and signs its standing orders (apps, dataset, pool), like publishAssetOrders. */
  static async init(net: LocalNetwork, examples: Examples, accounts: FloorAccounts, resultsBase: string): Promise<Floor> {
    const d = net.deployment;
    const dom = domain(d.chainId, d.hub);
    const pools = WorkerpoolRegistry__factory.connect(d.workerpoolRegistry, accounts.scheduler);
    const receipt = await (await pools.register(accounts.scheduler.address, "bench floor pool", accounts.scheduler.address, 30, 10)).wait();
    let pool: bigint | undefined;
    for (const log of receipt?.logs ?? []) {
      const parsed = pools.interface.parseLog(log);
      if (parsed?.name === "WorkerpoolRegistered") pool = parsed.args.id as bigint;
    }
    if (pool === undefined) throw new E2eBenchError("CHAIN", "registering the floor's pool emitted no WorkerpoolRegistered");
    const apps: Record<string, Signed<AppOrder>> = {};
    for (const [name, id] of Object.entries(examples.apps)) {
      apps[name] = await signOrder(accounts.assetOwner, dom, "AppOrder", buildAppOrder({ app: id, appprice: 0n, volume: 1_000_000n }));
    }
    const dataset = await signOrder(accounts.assetOwner, dom, "DatasetOrder", buildDatasetOrder({ dataset: examples.customers, datasetprice: 0n, volume: 1_000_000n }));
    const poolOrder = await signOrder(
      accounts.scheduler,
      dom,
      "WorkerpoolOrder",
      buildWorkerpoolOrder({ workerpool: pool, workerpoolprice: 0n, volume: 1_000_000n, category: 0n, trust: 8n }),
    );
    const hub = Hub__factory.connect(d.hub, accounts.scheduler);
    const floor = new Floor(examples, accounts, dom, hub, { apps, dataset, pool: poolOrder }, resultsBase);
    floor.nonce = await hub.orderNonce(accounts.requester.address);
    return floor;
  }

  /** One request of `v`, its steps timed. */
  async run(v: Variant): Promise<FloorRun> {
    const w = v.workload;
    if (v.trust > this.accounts.workers.length) throw new E2eBenchError("CHAIN", `the floor has ${this.accounts.workers.length} worker keys, trust ${v.trust} needs more`);
    if (!this.modules.has(w.app)) this.modules.set(w.app, await appBytes(w));
    const app = this.modules.get(w.app);
    const q = Math.max(1, v.trust);
    const signers = this.accounts.workers.slice(0, q);

    const t0 = now();
    let t = t0;
    const lap = () => {
      const at = now();
      const ms = at - t;
      t = at;
      return ms;
    };

    const request = await signOrder(
      this.accounts.requester,
      this.dom,
      "RequestOrder",
      buildRequestOrder({
        app: this.examples.apps[w.app],
        appmaxprice: 0n,
        dataset: w.usesDataset ? this.examples.customers : 0n,
        workerpoolmaxprice: 0n,
        workerpool: this.orders.pool.workerpool,
        category: 0n,
        trust: BigInt(v.trust),
        requester: this.accounts.requester.address,
        params: formatParams(w.params),
        nonce: this.nonce,
      }),
    );
    const signMs = lap();

    const matched = await (await this.hub.matchOrders(this.orders.apps[w.app], w.usesDataset ? this.orders.dataset : EMPTY_DATASET_ORDER, this.orders.pool, request)).wait();
    let dealId: string | undefined;
    for (const log of matched?.logs ?? []) {
      try {
        const parsed = this.hub.interface.parseLog(log);
        if (parsed?.name === "DealMatched") dealId = parsed.args.dealId as string;
      } catch {
        // another contract's event
      }
    }
    if (!dealId) throw new E2eBenchError("CHAIN", `${v.name}: the floor's matchOrders emitted no DealMatched`);
    const matchMs = lap();

    const task = taskIdOf(dealId, 0);
    const result = await this.runtime.run({
      runtime: w.runtime,
      app,
      dataset: w.usesDataset ? CUSTOMERS_DATASET : undefined,
      params: formatParams(w.params),
      seed: task,
    });
    const runMs = lap();

    const contributions = await Promise.all(signers.map((s) => relayedContribution(s, this.dom, dealId!, 0n, result.digest)));
    await (await this.hub.contributeBatch(contributions)).wait();
    const contributeMs = lap();

    const reveals = await Promise.all(signers.map((s) => relayedReveal(s, this.dom, task, result.digest)));
    await (await this.hub.revealBatch(reveals)).wait();
    const revealMs = lap();

    await (await this.hub.finalize(task, toUtf8Bytes(`${this.resultsBase}/results/${result.digest}`), "0x")).wait();
    const finalizeMs = lap();
    const ms = t - t0;

    try {
      const resultJson = await readFile(join(result.outputDir, RESULT_FILE), "utf8");
      const status = (await this.hub.viewTask(task)).status;
      if (status !== 3n) throw new E2eBenchError("CHAIN", `${v.name}: the floor's task ended in status ${status}, not COMPLETED`);
      return {
        ms,
        steps: { request: signMs, match: matchMs, run: runMs, contribute: contributeMs, reveal: revealMs, finalize: finalizeMs },
        digest: result.digest,
        resultJson,
      };
    } finally {
      await rm(result.outputDir, { recursive: true, force: true });
    }
  }
}
