/**
 * A whole Concord network as real processes: the local chain (deploy/network.ts), the example apps and the
 * `customers` dataset registered, a pool, one scheduler and N workers each started as its own `concord` process, and
 * helpers to publish orders and run a request to its verified result. Used by `npm start` (deploy/start.ts), the
 * end-to-end tests and `bench/e2e`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { toUtf8String, type ContractTransactionResponse, type Interface, type Wallet } from "ethers";
import { registeredId } from "../sdk/cli/assets";
import { signOrder } from "../sdk/eip712";
import { buildAppOrder, buildDatasetOrder, buildRequestOrder, orderToJson } from "../sdk/orders";
import { domain, hashOrder, taskId as taskIdOf } from "../sdk/eip712";
import { formatParams } from "../sdk/params";
import type { LocalNetwork } from "./network";
import {
  AppRegistry__factory,
  DatasetRegistry__factory,
  Hub__factory,
  ResultConsumer__factory,
  WorkerpoolRegistry__factory,
} from "../typechain-types";

const ROOT = join(__dirname, "..");
const BIN = join(ROOT, "bin", "concord");
const sha256 = (path: string) => "0x" + createHash("sha256").update(readFileSync(path)).digest("hex");

export interface Examples {
  apps: Record<"echo" | "sieve" | "wordcount" | "sql", bigint>;
  customers: bigint;
  workerpool: bigint;
  consumer: string;
}

/** Registers the example apps, the customers dataset (owner: account 0), a pool (owner and scheduler: account 1). */
export async function registerExamples(net: LocalNetwork): Promise<Examples> {
  const [owner, scheduler] = net.accounts;
  const d = net.deployment;
  const apps = AppRegistry__factory.connect(d.appRegistry, owner);
  const idOf = async (tx: Promise<ContractTransactionResponse>, iface: Interface, event: string): Promise<bigint> => {
    const receipt = await (await tx).wait();
    if (!receipt) throw new Error(`${event}: no receipt`);
    return registeredId(receipt, iface, event);
  };
  const ids = {} as Examples["apps"];
  for (const name of ["echo", "sieve", "wordcount"] as const) {
    const file = join(ROOT, "apps", "build", `${name}.wasm`);
    ids[name] = await idOf(apps.register(owner.address, name, "wasi", pathToFileURL(file).href, sha256(file)), apps.interface, "AppRegistered");
  }
  ids.sql = await idOf(apps.register(owner.address, "sql", "sql", "", "0x" + "0".repeat(64)), apps.interface, "AppRegistered");
  const datasets = DatasetRegistry__factory.connect(d.datasetRegistry, owner);
  const customersFile = join(ROOT, "apps", "datasets", "customers.sqlite");
  const customers = await idOf(
    datasets.register(owner.address, "customers", pathToFileURL(customersFile).href, sha256(customersFile)),
    datasets.interface,
    "DatasetRegistered",
  );
  const pools = WorkerpoolRegistry__factory.connect(d.workerpoolRegistry, scheduler);
  const workerpool = await idOf(pools.register(scheduler.address, "Concord demo pool", scheduler.address, 30, 10), pools.interface, "WorkerpoolRegistered");
  const consumer = await new ResultConsumer__factory(owner).deploy(d.hub);
  await consumer.waitForDeployment();
  return { apps: ids, customers, workerpool, consumer: await consumer.getAddress() };
}

export interface Daemon {
  proc: ChildProcess;
  /** the JSON lines the process printed on stdout */
  lines: Record<string, unknown>[];
  stop(): Promise<void>;
}

/** Starts `concord <args> --json` and resolves with the first stdout JSON line that satisfies `ready`. */
export function spawnConcord(
  args: string[],
  env: Record<string, string>,
  ready: (line: Record<string, unknown>) => boolean,
  opts: { timeoutMs?: number; stderr?: (chunk: string) => void } = {},
): Promise<Daemon> {
  const proc = spawn(process.execPath, [BIN, ...args, "--json"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = "";
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`concord ${args.slice(0, 2).join(" ")} not ready in time:\n${stderr.slice(-2000)}`));
    }, opts.timeoutMs ?? 60_000);
    proc.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const text = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const line = JSON.parse(text) as Record<string, unknown>;
          lines.push(line);
          if (ready(line)) {
            clearTimeout(timer);
            resolve({ proc, lines, stop });
          }
        } catch {
          // not a JSON line
        }
      }
    });
    proc.stderr!.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-20_000);
      opts.stderr?.(chunk.toString());
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`concord ${args.slice(0, 2).join(" ")} exited (${code}):\n${stderr.slice(-2000)}`));
    });
  });
}

export interface Cluster {
  examples: Examples;
  schedulerUrl: string;
  scheduler: Daemon;
  workers: Daemon[];
  dataDir: string;
  env: Record<string, string>;
  /** kills the scheduler process (SIGKILL by default: no graceful shutdown) and starts it again on its port and data */
  restartScheduler(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  workers: number;
  /** test hooks per worker index, e.g. { 3: "lie" } */
  behaviours?: Record<number, string>;
  schedulerPort?: number;
  /** the pool's commit mode (scheduler `--commit-mode`) */
  commitMode?: "relay" | "direct";
  /** tasks per workerpool order the scheduler offers (scheduler `--offer-volume`) */
  offerVolume?: number;
  logLevel?: string;
  /** more `scheduler start` flags, e.g. ["--policy", "adaptive"] */
  schedulerFlags?: string[];
  stderr?: (chunk: string) => void;
}

/** Registers the examples, starts the scheduler (account 1) and the workers (accounts 2…), all as processes. */
export async function startCluster(net: LocalNetwork, o: ClusterOptions): Promise<Cluster> {
  const examples = await registerExamples(net);
  const dataDir = mkdtempSync(join(tmpdir(), "concord-cluster-"));
  const env = { CONCORD_RPC_URL: net.rpcUrl, CONCORD_DEPLOYMENTS_DIR: dirname(net.deploymentsFile) };
  const logLevel = o.logLevel ?? "warn";
  const startScheduler = (port: number) =>
    spawnConcord(
      [
        "scheduler", "start",
        "--workerpool", String(examples.workerpool),
        "--port", String(port),
        "--data-dir", join(dataDir, "scheduler"),
        "--commit-mode", o.commitMode ?? "relay",
        "--offer-volume", String(o.offerVolume ?? 1000),
        "--log-level", logLevel,
        ...(o.schedulerFlags ?? []),
      ],
      { ...env, CONCORD_KEY: net.accounts[1].privateKey },
      (l) => l.event === "ready",
      { stderr: o.stderr },
    );
  let scheduler = await startScheduler(o.schedulerPort ?? 0);
  const schedulerUrl = String(scheduler.lines.find((l) => l.event === "ready")!.url);
  const workers: Daemon[] = [];
  try {
    for (let i = 0; i < o.workers; i++) {
      const account = net.accounts[2 + i];
      workers.push(
        await spawnConcord(
          [
            "worker", "start",
            "--scheduler", `${schedulerUrl.replace(/^http/, "ws")}/ws`,
            "--data-dir", join(dataDir, `worker-${i}`),
            "--behaviour", o.behaviours?.[i] ?? "honest",
            "--log-level", logLevel,
          ],
          { ...env, CONCORD_KEY: account.privateKey },
          (l) => l.event === "connected",
          { stderr: o.stderr },
        ),
      );
    }
  } catch (e) {
    await Promise.all([scheduler, ...workers].map((d) => d.stop()));
    throw e;
  }
  const cluster: Cluster = {
    examples,
    schedulerUrl,
    scheduler,
    workers,
    dataDir,
    env,
    async restartScheduler(signal = "SIGKILL") {
      const exited = new Promise<void>((resolve) => scheduler.proc.once("exit", () => resolve()));
      scheduler.proc.kill(signal);
      await exited;
      scheduler = cluster.scheduler = await startScheduler(Number(new URL(schedulerUrl).port));
    },
    async stop() {
      await Promise.all(workers.map((d) => d.stop()));
      await cluster.scheduler.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return cluster;
}

async function post(url: string, body: unknown): Promise<void> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`POST ${url}: ${res.status} ${await res.text()}`);
}

/** The app and dataset owner (account 0) offers every example app and the dataset for free, in bulk. */
export async function publishAssetOrders(net: LocalNetwork, c: Cluster): Promise<void> {
  const owner = net.accounts[0];
  const dom = domain(net.deployment.chainId, net.deployment.hub);
  for (const app of Object.values(c.examples.apps)) {
    const order = await signOrder(owner, dom, "AppOrder", buildAppOrder({ app, appprice: 0n, volume: 1_000_000n }));
    await post(`${c.schedulerUrl}/orders`, { kind: "AppOrder", order: orderToJson(order) });
  }
  const ds = await signOrder(owner, dom, "DatasetOrder", buildDatasetOrder({ dataset: c.examples.customers, datasetprice: 0n, volume: 1_000_000n }));
  await post(`${c.schedulerUrl}/orders`, { kind: "DatasetOrder", order: orderToJson(ds) });
}

export interface RequestSpec {
  app: bigint;
  dataset?: bigint;
  trust: number;
  params?: { args?: string[]; query?: string };
  callback?: string;
  requester: Wallet;
}

export interface RequestOutcome {
  taskId: string;
  dealId: string;
  digest: string;
  result: unknown;
  callbackData: string | null;
  ms: number;
  task: { task: Record<string, unknown>; replicas: unknown[]; timeline: { ms: number; event: string; tx?: string }[] };
}

/** Signs a request and posts it to the scheduler's book; returns its EIP-712 hash. */
export async function postRequest(net: LocalNetwork, c: Cluster, spec: RequestSpec): Promise<string> {
  const d = net.deployment;
  const dom = domain(d.chainId, d.hub);
  const hub = Hub__factory.connect(d.hub, net.provider);
  const order = buildRequestOrder({
    app: spec.app,
    appmaxprice: 0n,
    dataset: spec.dataset ?? 0n,
    workerpoolmaxprice: 0n,
    workerpool: c.examples.workerpool,
    category: 0n,
    trust: BigInt(spec.trust),
    requester: spec.requester.address,
    ...(spec.callback ? { callback: spec.callback } : {}),
    params: formatParams(spec.params ?? {}),
    nonce: await hub.orderNonce(spec.requester.address),
  });
  const signed = await signOrder(spec.requester, dom, "RequestOrder", order);
  await post(`${c.schedulerUrl}/orders`, { kind: "RequestOrder", order: orderToJson(signed) });
  return hashOrder(dom, "RequestOrder", order);
}

/** The deal matched for a request (waits for its DealMatched event). */
export async function dealOf(net: LocalNetwork, requestHash: string, timeoutMs = 60_000): Promise<string> {
  const hub = Hub__factory.connect(net.deployment.hub, net.provider);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await hub.queryFilter(hub.filters.DealMatched(undefined, requestHash), net.deployment.blockNumber);
    if (events[0]) return events[0].args.dealId;
    if (Date.now() > deadline) throw new Error("no deal matched in time");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The scheduler's view of a task (`GET /tasks/:id`), or null while it is unknown or the scheduler is unreachable. */
/**
 * The scheduler's view of a task, null when unknown or unreachable. `after`: long poll, answered once the timeline
 * has more entries than that or the task ended (at most `waitMs` later).
 */
export async function taskOf(c: Cluster, taskId: string, wait?: { after: number; waitMs: number }): Promise<RequestOutcome["task"] | null> {
  try {
    const res = await fetch(`${c.schedulerUrl}/tasks/${taskId}${wait ? `?after=${wait.after}&waitMs=${wait.waitMs}` : ""}`);
    return res.ok ? ((await res.json()) as RequestOutcome["task"]) : null;
  } catch {
    return null; // restarting
  }
}

/** Waits for the first task of a request's deal to be finalized, and fetches its result. */
export async function waitForResult(
  net: LocalNetwork,
  c: Cluster,
  requestHash: string,
  opts: { timeoutMs?: number; onProgress?: (status: string) => void; started?: number } = {},
): Promise<RequestOutcome> {
  const started = opts.started ?? Date.now();
  const deadline = started + (opts.timeoutMs ?? 120_000);
  const hub = Hub__factory.connect(net.deployment.hub, net.provider);
  const dealId = await dealOf(net, requestHash, opts.timeoutMs);
  opts.onProgress?.("matched");
  const taskId = taskIdOf(dealId, 0);
  let last = "";
  let seen = 0;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`task ${taskId} not finalized in time (last status ${last})`);
    const view = await taskOf(c, taskId, { after: seen, waitMs: Math.max(0, Math.min(5_000, deadline - Date.now())) });
    const news = view !== null && view.timeline.length > seen;
    if (view) {
      seen = view.timeline.length;
      const status = String(view.task.status);
      const progress = `${status} · commits ${view.task.commits}/${view.task.quorum}`;
      if (progress !== last) opts.onProgress?.((last = progress));
      if (status === "completed") {
        const digest = String(view.task.resultDigest);
        const result = (await (await fetch(`${c.schedulerUrl}/results/${digest}`)).json()) as { result?: unknown };
        const hasCallback = view.task.callback !== null && view.task.callback !== undefined;
        const stored = hasCallback ? ((await hub.resultFor(taskId)) as string) : null;
        return { taskId, dealId, digest, result: result.result ?? result, callbackData: stored, ms: Date.now() - started, task: view };
      }
      if (status === "failed") throw new Error(`task ${taskId} failed: ${String(view.task.failureReason)}`);
    }
    if (!news) await new Promise((r) => setTimeout(r, 100)); // the scheduler restarting, or a wait that timed out
  }
}

/** Signs a request, posts it to the scheduler's book, waits for its deal and its finalized result. */
export async function runRequest(
  net: LocalNetwork,
  c: Cluster,
  spec: RequestSpec,
  opts: { timeoutMs?: number; onProgress?: (status: string) => void } = {},
): Promise<RequestOutcome> {
  const started = Date.now();
  return waitForResult(net, c, await postRequest(net, c, spec), { ...opts, started });
}

/** The callback bytes as text when they are UTF-8 (the echo app's), else hex. */
export function showCallback(data: string): string {
  try {
    return toUtf8String(data);
  } catch {
    return data;
  }
}
