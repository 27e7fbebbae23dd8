/**
 * End-to-end benchmark: how long a request takes through the real Concord system (a local chain, the scheduler and
 * four workers as processes, deploy/cluster.ts), against the floor measured in the same run on the same chain (the
 * same transactions sent back to back by a bare script, each sent as the scheduler sends its own, plus the app's own
 * run; floor.ts), for reference against the same script sending with ethers' defaults, and how many tasks per second
 * the system finalizes. See bench/e2e/README.md for how to read the output.
 *
 *   npx ts-node bench/e2e/index.ts [--quick] [--iterations N] [--warmup N] [--workloads sieve,sql] [--trusts 1,3]
 *                                  [--volume V] [--throughput-trusts 1,3] [--poll MS]
 *
 * Each iteration runs every variant (workload × trust) once through the system and once through the floor (then once
 * through the reference script), the variant order rotating and which of the first two goes first alternating, so a slow stretch of the machine hits both
 * alike; warm-up iterations (the workers' first fetch and compile of each app) are discarded. Every system result must
 * have the same digest as the floor's for the same variant. Exits non-zero on errors only, never on timings.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { arch, cpus, platform, tmpdir } from "node:os";
import { join } from "node:path";
import { Command, InvalidArgumentError, Option as CommanderOption } from "commander";
import type { Wallet } from "ethers";
import { startLocalNetwork, type LocalNetwork } from "../../deploy/network";
import { publishAssetOrders, startCluster, type Cluster } from "../../deploy/cluster";
import { closeStandbyThreads } from "../../worker/runtime/thread";
import { summarize, type Summary } from "../runtime/stats";
import { CpuMeter, type Watched } from "./cpu";
import { E2eBenchError } from "./errors";
import { Floor, FLOOR_STEPS, type FloorRun } from "./floor";
import { DaemonLogs } from "./logs";
import { milestonesLine, milestonesOf, phasesOf, SYSTEM_PHASES, WORK_PHASES } from "./phases";
import { defaultSystemOptions, SystemDriver, type SystemRun } from "./system";
import { variantsOf, WORKLOADS, type Variant, type WorkloadName } from "./workloads";

/** The target of issue 4: the system within 30% of the floor. */
const TARGET_RATIO = 1.3;
const WORKERS = 4;

interface Options {
  iterations: number;
  warmup: number;
  workloads: WorkloadName[];
  trusts: number[];
  volume: number;
  throughputTrusts: number[];
  /** null: the requester long-polls its task */
  pollMs: number | null;
  /** the scheduler's hedging policy (`scheduler start --policy`) and, for `fixed`, its replicas beyond the quorum */
  policy: "fixed" | "adaptive";
  extra: number;
}

const DEFAULTS: Options = { iterations: 10, warmup: 1, workloads: ["sieve", "sql"], trusts: [1, 3], volume: 20, throughputTrusts: [1, 3], pollMs: defaultSystemOptions.taskPollMs, policy: "fixed", extra: 1 };
const QUICK: Pick<Options, "iterations" | "volume"> = { iterations: 3, volume: 12 };

function integer(min: number, max: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) throw new InvalidArgumentError(`expected an integer in ${min}..${max}`);
    return value;
  };
}

function trustList(text: string): number[] {
  const list = text.split(",").map((s) => s.trim());
  if (list.some((s) => !/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 3)) throw new InvalidArgumentError("expected trust levels in 1..3, comma-separated (four workers: q + 1 replicas)");
  return [...new Set(list.map(Number))];
}

function workloadList(text: string): WorkloadName[] {
  const list = text.split(",").map((s) => s.trim());
  const unknown = list.filter((s) => !(s in WORKLOADS));
  if (unknown.length || list.length === 0) throw new InvalidArgumentError(`expected workloads among ${Object.keys(WORKLOADS).join(", ")}, comma-separated`);
  return [...new Set(list)] as WorkloadName[];
}

function parseOptions(argv: string[]): Options {
  const o = new Command("bench:e2e")
    .description("Concord end to end: request latency through the real system vs the floor, and throughput")
    .option("--quick", `${QUICK.iterations} iterations and volume ${QUICK.volume} instead of ${DEFAULTS.iterations} and ${DEFAULTS.volume}`)
    .option("--iterations <count>", `measured iterations per variant (default ${DEFAULTS.iterations})`, integer(1, 1_000))
    .option("--warmup <count>", `discarded warm-up iterations (default ${DEFAULTS.warmup})`, integer(0, 100))
    .option("--workloads <list>", `workloads (default ${DEFAULTS.workloads.join(",")}; also: echo)`, workloadList)
    .option("--trusts <list>", `trust levels of the latency runs (default ${DEFAULTS.trusts.join(",")})`, trustList)
    .option("--volume <V>", `tasks in the throughput request (default ${DEFAULTS.volume}; 0 skips it)`, integer(0, 500))
    .option("--throughput-trusts <list>", `trust levels of the throughput runs (default ${DEFAULTS.throughputTrusts.join(",")})`, trustList)
    .option("--poll <ms>", "poll the scheduler for the task every <ms> instead of long-polling it", integer(1, 1_000))
    .addOption(new CommanderOption("--policy <kind>", "the scheduler's hedging policy (default fixed)").choices(["fixed", "adaptive"]))
    .option("--extra <n>", "fixed policy: replicas beyond the quorum (default 1)", integer(0, 1))
    .parse(argv)
    .opts<Partial<Options> & { quick?: boolean; poll?: number }>();
  return {
    iterations: o.iterations ?? (o.quick ? QUICK.iterations : DEFAULTS.iterations),
    warmup: o.warmup ?? DEFAULTS.warmup,
    workloads: o.workloads ?? DEFAULTS.workloads,
    trusts: o.trusts ?? DEFAULTS.trusts,
    volume: o.volume ?? (o.quick ? QUICK.volume : DEFAULTS.volume),
    throughputTrusts: o.throughputTrusts ?? DEFAULTS.throughputTrusts,
    pollMs: o.poll ?? DEFAULTS.pollMs,
    policy: o.policy ?? DEFAULTS.policy,
    extra: o.extra ?? DEFAULTS.extra,
  };
}

// ------------------------------------------------------------------------------------------------ formatting

const num = (x: number | undefined, width = 9, digits = 0): string => (x === undefined || Number.isNaN(x) ? "-" : x.toFixed(digits)).padStart(width);
const progress = (text: string) => {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${text}`);
};

function median(values: number[]): number | undefined {
  return values.length ? summarize(values).median : undefined;
}

// ------------------------------------------------------------------------------------------------ measurement

interface Samples {
  system: SystemRun[];
  floor: FloorRun[];
  /** the same floor, its transactions sent the obvious way with ethers' defaults (for reference) */
  script: FloorRun[];
}

interface Floors {
  floor: Floor;
  script: Floor;
}

/** CPU meters of the measured requests: one over the system's, one over the floor's (the same processes watched). */
interface Meters {
  system: CpuMeter;
  floor: CpuMeter;
}

function checkSameWork(v: Variant, system: SystemRun, floor: FloorRun): void {
  for (const t of system.tasks) {
    if (t.digest.toLowerCase() !== floor.digest.toLowerCase()) {
      throw new E2eBenchError("RESULT_MISMATCH", `${v.name}: the system finalized digest ${t.digest}, the floor's run gave ${floor.digest} (${floor.resultJson.trim().slice(0, 120)})`);
    }
  }
}

async function measureLatency(variants: Variant[], opts: Options, system: SystemDriver, floors: Floors, requester: Wallet, meters: Meters): Promise<Map<string, Samples>> {
  const samples = new Map<string, Samples>(variants.map((v) => [v.name, { system: [], floor: [], script: [] }]));
  const total = opts.warmup + opts.iterations;
  for (let i = 0; i < total; i++) {
    for (let k = 0; k < variants.length; k++) {
      const j = (i + k) % variants.length;
      const v = variants[j];
      progress(`latency: iteration ${i + 1}/${total}${i < opts.warmup ? " (warm-up)" : ""}, ${v.name}`);
      // each variant alternates which side goes first from one iteration to the next
      const systemFirst = (i + j) % 2 === 0;
      let s: SystemRun | undefined;
      let f: FloorRun | undefined;
      const measured = i >= opts.warmup;
      for (const side of systemFirst ? ["system", "floor"] : ["floor", "system"]) {
        if (side === "system") s = await (measured ? meters.system.measure(() => system.run(v, requester)) : system.run(v, requester));
        else f = await (measured ? meters.floor.measure(() => floors.floor.run(v)) : floors.floor.run(v));
      }
      const script = await floors.script.run(v);
      checkSameWork(v, s!, f!);
      checkSameWork(v, s!, script);
      if (measured) {
        samples.get(v.name)!.system.push(s!);
        samples.get(v.name)!.floor.push(f!);
        samples.get(v.name)!.script.push(script);
      }
    }
  }
  progress("");
  return samples;
}

interface Throughput {
  trust: number;
  volume: number;
  seconds: number;
  perSecond: number;
  firstDoneMs: number;
  medianDoneMs: number;
  schedulerTxs: number;
  /** tasks/s if each task's three transactions cost what the floor's do, sent one after another (null: not measured) */
  chainCeiling: number | null;
}

/**
 * One request of `opts.volume` tasks. Each task's completion time is when the scheduler logged it finalized (exact,
 * same clock); the requester's polling, deliberately slow here, only serves to know when all are done (and stands in
 * for a task whose log line is missing).
 */
async function measureThroughput(net: LocalNetwork, trust: number, opts: Options, system: SystemDriver, floor: Floor, logs: DaemonLogs, requester: Wallet): Promise<Throughput> {
  const v = variantsOf([WORKLOADS[opts.workloads[0]]], [trust])[0];
  progress(`throughput: one request of ${opts.volume} tasks at trust ${trust}`);
  const scheduler = net.accounts[1].address;
  const before = await net.provider.getTransactionCount(scheduler, "latest");
  const run = await system.run(v, requester, opts.volume);
  const after = await net.provider.getTransactionCount(scheduler, "latest");
  progress("");
  checkSameWork(v, run, await floor.run(v));
  const done = run.tasks.map((t) => Math.min(logs.finalizedAt(t.taskId) ?? t.doneAt, t.doneAt) - run.startedAt);
  const ms = Math.max(...done);
  return {
    trust,
    volume: opts.volume,
    seconds: ms / 1000,
    perSecond: opts.volume / (ms / 1000),
    firstDoneMs: Math.min(...done),
    medianDoneMs: summarize(done).median,
    schedulerTxs: after - before,
    chainCeiling: null,
  };
}

// ------------------------------------------------------------------------------------------------ report

function reportLatency(variants: Variant[], samples: Map<string, Samples>, logs: DaemonLogs): { met: number; lines: string[] } {
  const lines: string[] = [];
  const head = `  ${"variant".padEnd(10)} ${"median ms".padStart(9)} ${"p90 ms".padStart(9)} ${"floor med".padStart(9)} ${"floor p90".padStart(9)} ${"ratio".padStart(7)} ${"script med".padStart(10)} ${"ratio".padStart(7)}  target <= ${TARGET_RATIO}x (vs the floor)`;
  lines.push(head);
  let met = 0;
  const stats = new Map<string, { system: Summary; floor: Summary }>();
  for (const v of variants) {
    const s = samples.get(v.name)!;
    const system = summarize(s.system.map((r) => r.ms));
    const floor = summarize(s.floor.map((r) => r.ms));
    stats.set(v.name, { system, floor });
    const script = summarize(s.script.map((r) => r.ms));
    const ratio = system.median / floor.median;
    if (ratio <= TARGET_RATIO) met++;
    lines.push(
      `  ${v.name.padEnd(10)} ${num(system.median)} ${num(system.p90)} ${num(floor.median)} ${num(floor.p90)} ${(ratio.toFixed(2) + "x").padStart(7)} ${num(script.median, 10)} ${((system.median / script.median).toFixed(2) + "x").padStart(7)}  ${ratio <= TARGET_RATIO ? "met" : `not met (+${(system.median - floor.median).toFixed(0)} ms over the floor)`}`,
    );
  }

  lines.push("", "where the time goes (medians of each phase, ms; medians do not add up exactly to the median total)");
  const cols = variants.map((v) => v.name.padStart(9)).join(" ");
  lines.push(`  ${"system".padEnd(50)} ${cols}`);
  const phaseSamples = new Map<string, Record<string, number | undefined>[]>(
    variants.map((v) => [v.name, samples.get(v.name)!.system.map((r) => phasesOf(r, r.tasks[0], logs))]),
  );
  for (const p of SYSTEM_PHASES.flatMap((x) => (x.key === "work" ? [x, ...WORK_PHASES] : [x]))) {
    const row = variants.map((v) => num(median(phaseSamples.get(v.name)!.map((x) => x[p.key]).filter((x): x is number => x !== undefined))));
    lines.push(`  ${(p.overhead ? "* " : "  ") + p.label}`.padEnd(52) + " " + row.join(" "));
  }
  const overhead = variants.map((v) => num(median(phaseSamples.get(v.name)!.map((x) => x.overhead!))));
  lines.push(`  ${"  sum of the * phases (pure overhead)".padEnd(50)} ${overhead.join(" ")}`);
  lines.push(`  ${"  total (request -> seen finalized)".padEnd(50)} ${variants.map((v) => num(stats.get(v.name)!.system.median)).join(" ")}`);
  lines.push(`  ${"floor".padEnd(50)}`);
  const floorLabels: Record<(typeof FLOOR_STEPS)[number], string> = {
    request: "sign the request order",
    match: "matchOrders tx",
    run: "app run (Runtime.run, warm, in-process)",
    contribute: "q Contributions signed + contributeBatch tx",
    reveal: "q Reveals signed + revealBatch tx",
    finalize: "finalize tx",
  };
  for (const step of FLOOR_STEPS) {
    const row = variants.map((v) => num(median(samples.get(v.name)!.floor.map((r) => r.steps[step])), 9, 1));
    lines.push(`  ${"  " + floorLabels[step]}`.padEnd(52) + " " + row.join(" "));
  }
  lines.push(`  ${"  total".padEnd(50)} ${variants.map((v) => num(stats.get(v.name)!.floor.median)).join(" ")}`);
  lines.push("  * no counterpart in the floor: pure system overhead");

  lines.push("", "task timeline of a median request (the lower middle one; GET /tasks/:id, ms since the scheduler created the task)");
  for (const v of variants) {
    const runs = [...samples.get(v.name)!.system].sort((a, b) => a.ms - b.ms);
    const mid = runs[(runs.length - 1) >> 1];
    lines.push(`  ${v.name.padEnd(9)} ${String(mid.ms).padStart(5)} ms: ${milestonesLine(milestonesOf(mid.tasks[0]))}`);
  }
  return { met, lines };
}

function reportCpu(meters: Meters): string[] {
  if (!meters.system.supported) return ["", "CPU per request: not measured (needs Linux's /proc)"];
  const system = meters.system.perWindow();
  const floor = new Map(meters.floor.perWindow().map((r) => [r.role, r]));
  const lines = ["", "CPU per request, every variant (ms of CPU, mean over the measured requests; main thread + other threads)"];
  lines.push(`  ${"process".padEnd(26)} ${"system".padStart(18)} ${"floor".padStart(18)}`);
  const cell = (r?: { main: number; threads: number }) => (r ? `${r.main.toFixed(0)} + ${r.threads.toFixed(0)}`.padStart(18) : "-".padStart(18));
  let sums = [0, 0];
  for (const r of system) {
    const f = floor.get(r.role);
    sums = [sums[0] + r.main + r.threads, sums[1] + (f ? f.main + f.threads : 0)];
    lines.push(`  ${r.role.padEnd(26)} ${cell(r)} ${cell(f)}`);
  }
  lines.push(`  ${"total".padEnd(26)} ${sums[0].toFixed(0).padStart(18)} ${sums[1].toFixed(0).padStart(18)}`);
  return lines;
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv);
  const variants = variantsOf(opts.workloads.map((w) => WORKLOADS[w]), opts.trusts);
  const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
  console.log(`Concord end-to-end benchmark: node ${process.version}, ${platform()}-${arch()}, ${cpu} x${cpus().length}`);
  console.log(
    `one local chain (hardhat node, automine), one scheduler (--policy ${opts.policy}${opts.policy === "fixed" ? ` --extra ${opts.extra}` : ""}) and ${WORKERS} workers as processes; ` +
      `${opts.iterations} measured iterations per variant after ${opts.warmup} warm-up (discarded); variants: ${variants.map((v) => `${v.name} (${v.workload.label})`).join(", ")}`,
  );
  console.log(`latency = request order signed -> requester sees the task finalized (${opts.pollMs === null ? "long-polling GET /tasks/:id" : `polling the scheduler every ${opts.pollMs} ms`})`);

  const started = performance.now();
  const deploymentsDir = mkdtempSync(join(tmpdir(), "concord-bench-e2e-"));
  const logs = new DaemonLogs();
  let net: LocalNetwork | undefined;
  let cluster: Cluster | undefined;
  let floors: Floors | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      floors?.floor.close();
      floors?.script.close();
      await cluster?.stop().catch(() => undefined);
      await net?.stop().catch(() => undefined);
      await closeStandbyThreads().catch(() => undefined);
      rmSync(deploymentsDir, { recursive: true, force: true });
    })());
  const onSignal = () => {
    console.error("\nbench:e2e: interrupted, stopping the network");
    void stop().then(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  try {
    progress("starting the chain");
    // accounts: 0 assets, 1 scheduler, 2-5 workers, 6 requester (system); 7 floor pool, 8-10 floor workers, 11 floor
    // requester; 12 the ethers-defaults script's pool (its own key: the floor's TxSender keeps a local nonce)
    net = await startLocalNetwork({ port: 0, accounts: 13, deploymentsDir });
    progress("starting the scheduler and the workers");
    cluster = await startCluster(net, {
      workers: WORKERS,
      logLevel: "info",
      schedulerFlags: ["--policy", opts.policy, "--extra", String(opts.extra)],
      stderr: (chunk) => logs.feed(chunk),
    });
    await publishAssetOrders(net, cluster);
    const a = net.accounts;
    const floorAccounts = { assetOwner: a[0], scheduler: a[7], workers: [a[8], a[9], a[10]], requester: a[11] };
    floors = {
      floor: await Floor.init(net, cluster.examples, floorAccounts, cluster.schedulerUrl, "scheduler"),
      script: await Floor.init(net, cluster.examples, { ...floorAccounts, scheduler: a[12] }, cluster.schedulerUrl, "ethers-defaults"),
    };
    const floor = floors.floor;
    const system = new SystemDriver(net, cluster, { ...defaultSystemOptions, taskPollMs: opts.pollMs });
    progress("");
    console.log(`set up in ${((performance.now() - started) / 1000).toFixed(1)} s (chain ${net.rpcUrl}, scheduler ${cluster.schedulerUrl})`);

    const watched: Watched[] = [
      { role: "chain (hardhat node)", pid: net.node.pid! },
      { role: "scheduler", pid: cluster.scheduler.proc.pid! },
      ...cluster.workers.map((w) => ({ role: `${WORKERS} workers`, pid: w.proc.pid! })),
      { role: "bench (requester, floor)", pid: process.pid },
    ];
    const meters: Meters = { system: new CpuMeter(watched), floor: new CpuMeter(watched) };
    const samples = await measureLatency(variants, opts, system, floors, a[6], meters);
    const throughput: Throughput[] = [];
    if (opts.volume > 0) {
      for (const trust of opts.throughputTrusts) throughput.push(await measureThroughput(net, trust, opts, system, floor, logs, a[6]));
    }

    for (const t of throughput) {
      const floorRuns = samples.get(variantsOf([WORKLOADS[opts.workloads[0]]], [t.trust])[0].name)?.floor;
      if (floorRuns?.length) {
        const perTask = ["contribute", "reveal", "finalize"] as const;
        t.chainCeiling = 1000 / perTask.reduce((sum, step) => sum + summarize(floorRuns.map((r) => r.steps[step])).median, 0);
      }
    }
    const { met, lines } = reportLatency(variants, samples, logs);
    console.log("");
    console.log("latency, request -> finalized result (ms)");
    for (const l of lines) console.log(l);
    for (const l of reportCpu(meters)) console.log(l);
    if (throughput.length) {
      console.log("");
      console.log(`throughput: one request of volume V, ${WORKERS} workers (${WORKLOADS[opts.workloads[0]].label}), request -> last task finalized (scheduler's log)`);
      console.log(`  ${"trust".padEnd(6)} ${"V".padStart(4)} ${"seconds".padStart(8)} ${"tasks/s".padStart(8)} ${"first ms".padStart(9)} ${"median ms".padStart(9)} ${"sched txs".padStart(9)} ${"txs/s".padStart(6)} ${"3-tx ceiling".padStart(12)}`);
      for (const t of throughput) {
        console.log(
          `  ${String(t.trust).padEnd(6)} ${String(t.volume).padStart(4)} ${t.seconds.toFixed(2).padStart(8)} ${t.perSecond.toFixed(2).padStart(8)} ${num(t.firstDoneMs)} ${num(t.medianDoneMs)} ${String(t.schedulerTxs).padStart(9)} ${(t.schedulerTxs / t.seconds).toFixed(1).padStart(6)} ${(t.chainCeiling === null ? "-" : t.chainCeiling.toFixed(2) + " /s").padStart(12)}`,
        );
      }
    }
    console.log("");
    console.log(`target: system median <= ${TARGET_RATIO}x the floor median: met for ${met} of ${variants.length} variants (a timing never fails the bench)`);
    const checked = [...samples.values()].reduce((n, s) => n + s.system.length, 0);
    console.log(`same work: every system result (${checked} measured requests${throughput.length ? ` + ${throughput.reduce((n, t) => n + t.volume, 0)} throughput tasks` : ""}) has the floor's digest for its variant`);
    if (logs.droppedLines) console.log(`note: ${logs.droppedLines} daemon log lines could not be read; some phase samples are missing`);
    console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await stop();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

main().catch((e: unknown) => {
  const err = e as Error & { code?: string; shortMessage?: string };
  console.error(`bench:e2e: ${err.code ? `${err.code}: ` : ""}${err.shortMessage ?? err.message}`);
  process.exitCode = 1;
});
