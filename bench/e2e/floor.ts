/**
 * The floor: what a request costs with nothing but the protocol's own work, in the same run, on the same chain, with
 * the same apps. A bare script does, strictly one after the other and each transaction awaited for its receipt (as
 * the scheduler does): sign the request order, `matchOrders`, run the app once (`Runtime.run`, warm, in this
 * process), have q workers sign their Contributions and send one `contributeBatch`, have them sign their Reveals and
 * send one `revealBatch`, then `finalize`. No order book, no chain watcher, no tick, no WebSocket, no hedged replica.
 *
 * `sends: "scheduler"` (the floor of the target): each transaction is sent exactly as the scheduler sends its own, by
 * the same `TxSender` (ethers underneath: one round trip for the gas estimate and the fees, a local nonce, the
 * broadcast, then the receipt) over the same provider settings (`sdk/rpc.ts`). A transaction thus costs both sides
 * the same, and the ratio shows only what the system adds around them.
 * `sends: "ethers-defaults"` (for reference): what a script written the obvious way pays, a JsonRpcProvider with
 * ethers' defaults (but its response cache) and `await (await contract.method(…)).wait()`; each of its sequential round trips (nonce, estimate,
 * fees, broadcast, receipt) waits for ethers' 10 ms batch stall first.
 *
 * It uses a pool of its own (registered by another account, which is its owner and consenting scheduler), so the
 * scheduler process never sees its deals as its own and the two never share a key or a nonce. Its workers are other
 * development accounts than the cluster's; they only sign, the pool's scheduler key sends everything (relayed
 * contributions and reveals, as in the system).
 */
import { rm, readFile } from "node:fs/promises";
import { join } from "node:path";
import { JsonRpcProvider, Network, toUtf8Bytes, type TransactionReceipt, type TypedDataDomain, type Wallet } from "ethers";
import pino from "pino";
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
import { rpcProvider } from "../../sdk/rpc";
import { TxSender } from "../../scheduler/chain/sender";
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

/** How the floor sends its transactions (see the module comment). */
export type FloorSends = "scheduler" | "ethers-defaults";

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
    private readonly send: (action: string, data: string) => Promise<TransactionReceipt>,
    private readonly provider: JsonRpcProvider,
    private readonly orders: { apps: Record<string, Signed<AppOrder>>; dataset: Signed<DatasetOrder>; pool: Signed<WorkerpoolOrder> },
    /** `finalize`'s `results` is `${resultsBase}/results/<digest>`, the same length as the scheduler's */
    private readonly resultsBase: string,
  ) {}

  /** Registers the floor's pool and signs its standing orders (apps, dataset, pool), like publishAssetOrders. */
  static async init(net: LocalNetwork, examples: Examples, accounts: FloorAccounts, resultsBase: string, sends: FloorSends): Promise<Floor> {
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
    let provider: JsonRpcProvider;
    let send: (action: string, data: string) => Promise<TransactionReceipt>;
    if (sends === "scheduler") {
      provider = rpcProvider(net.rpcUrl, d.chainId);
      const sender = new TxSender({}, { wallet: accounts.scheduler.connect(provider), provider, logger: pino({ level: "silent" }) });
      send = (action, data) => sender.send({ action, to: d.hub, data });
    } else {
      const network = Network.from(d.chainId);
      // ethers' defaults but its 250 ms response cache, which would hand back-to-back sends a stale nonce
      provider = new JsonRpcProvider(net.rpcUrl, network, { staticNetwork: network, cacheTimeout: -1 });
      const wallet = accounts.scheduler.connect(provider);
      send = async (action, data) => {
        const receipt = await (await wallet.sendTransaction({ to: d.hub, data })).wait();
        if (!receipt) throw new E2eBenchError("CHAIN", `the floor's ${action} has no receipt`);
        return receipt;
      };
    }
    const hub = Hub__factory.connect(d.hub, provider);
    const floor = new Floor(examples, accounts, dom, hub, send, provider, { apps, dataset, pool: poolOrder }, resultsBase);
    floor.nonce = await hub.orderNonce(accounts.requester.address);
    return floor;
  }

  /** Stops the floor's provider. */
  close(): void {
    this.provider.destroy();
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

    const hub = this.hub.interface;
    const dataset = w.usesDataset ? this.orders.dataset : EMPTY_DATASET_ORDER;
    const matched = await this.send("matchOrders", hub.encodeFunctionData("matchOrders", [this.orders.apps[w.app], dataset, this.orders.pool, request]));
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
    await this.send("contributeBatch", hub.encodeFunctionData("contributeBatch", [contributions]));
    const contributeMs = lap();

    const reveals = await Promise.all(signers.map((s) => relayedReveal(s, this.dom, task, result.digest)));
    await this.send("revealBatch", hub.encodeFunctionData("revealBatch", [reveals]));
    const revealMs = lap();

    await this.send("finalize", hub.encodeFunctionData("finalize", [task, toUtf8Bytes(`${this.resultsBase}/results/${result.digest}`), "0x"]));
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
