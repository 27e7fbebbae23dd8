/**
 * Runtime benchmark: what Concord's sandbox (worker/runtime, `Runtime.run`) costs over running the same WebAssembly
 * app with bare `node:wasi` in-process, cold and warm, on a CPU-heavy workload and on a tiny one whose time is almost
 * all fixed per-run overhead. See bench/runtime/README.md for how to read the output.
 *
 *   npx ts-node bench/runtime/index.ts [--quick] [--iterations N] [--warmup N] [--n N] [--rounds R] [--gap MS]
 *
 * The variants run interleaved (each iteration runs every variant once, the starting variant rotating) so that a
 * slow stretch of the machine hits all of them alike; warm-up iterations are discarded. Every run's result.json is
 * compared with a reference bare run, and the runtime's digest with directoryDigest of the reference output: the
 * figures are only printed if all variants did the same work. Exits non-zero on errors only, never on timings.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { arch, cpus, platform } from "node:os";
import { join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Command, InvalidArgumentError } from "commander";
import { summarize, type Summary } from "./stats";
import { BenchError, makeVariants, referenceOutput, type Measurement, type Variant, type Workload } from "./variants";

const APP_PATH = join(__dirname, "..", "..", "apps", "build", "sieve.wasm");

interface Options {
  iterations: number;
  warmup: number;
  n: number;
  rounds: number;
  gapMs: number;
}

const DEFAULTS: Options = { iterations: 30, warmup: 3, n: 10_000_000, rounds: 25, gapMs: 30 };
/** `--quick`: fewer iterations, same workloads, so the figures stay comparable (only noisier). */
const QUICK: Pick<Options, "iterations" | "warmup"> = { iterations: 8, warmup: 2 };

function integer(min: number, max: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`expected an integer in ${min}..${max}`);
    }
    return value;
  };
}

function parseOptions(argv: string[]): Options {
  const program = new Command("bench:runtime")
    .description("Concord runtime overhead vs bare node:wasi (sieve app), cold and warm")
    .option("--quick", `${QUICK.iterations} iterations and ${QUICK.warmup} warm-up instead of ${DEFAULTS.iterations} and ${DEFAULTS.warmup}`)
    .option("--iterations <count>", `measured iterations per variant (default ${DEFAULTS.iterations})`, integer(1, 10_000))
    .option("--warmup <count>", `discarded warm-up iterations (default ${DEFAULTS.warmup})`, integer(0, 1_000))
    .option("--n <N>", `sieve size of the CPU-heavy workload (sieve allows 0..200000000)`, integer(0, 200_000_000), DEFAULTS.n)
    .option("--rounds <R>", `sieve rounds of the CPU-heavy workload (sieve allows 1..10000)`, integer(1, 10_000), DEFAULTS.rounds)
    .option("--gap <ms>", `idle time before every run (default ${DEFAULTS.gapMs})`, integer(0, 10_000))
    .parse(argv);
  const o = program.opts<{ quick?: boolean; iterations?: number; warmup?: number; n: number; rounds: number; gap?: number }>();
  const base = o.quick ? QUICK : DEFAULTS;
  return {
    iterations: o.iterations ?? base.iterations,
    warmup: o.warmup ?? base.warmup,
    n: o.n,
    rounds: o.rounds,
    gapMs: o.gap ?? DEFAULTS.gapMs,
  };
}

type Reference = { resultJson: Buffer; digest: string };

function checkSameWork(m: Measurement, ref: Reference, variant: Variant, workload: Workload): void {
  if (!m.resultJson.equals(ref.resultJson)) {
    throw new BenchError(
      "RESULT_MISMATCH",
      `${variant.name} on ${workload.name} wrote result.json ${JSON.stringify(m.resultJson.toString("utf8").slice(0, 200))}, the reference run ${JSON.stringify(ref.resultJson.toString("utf8"))}`,
    );
  }
  if (m.digest !== undefined && m.digest !== ref.digest) {
    throw new BenchError("RESULT_MISMATCH", `${variant.name} on ${workload.name}: digest ${m.digest}, directoryDigest of the reference /out ${ref.digest}`);
  }
}

/** Runs every variant once per iteration, rotating which goes first; returns the kept timings by variant name. */
async function measureWorkload(variants: Variant[], workload: Workload, ref: Reference, opts: Options): Promise<Map<string, number[]>> {
  const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  const total = opts.warmup + opts.iterations;
  for (let i = 0; i < total; i++) {
    if (process.stderr.isTTY) process.stderr.write(`\r${workload.name}: iteration ${i + 1}/${total}${i < opts.warmup ? " (warm-up)" : ""}   `);
    for (let k = 0; k < variants.length; k++) {
      const variant = variants[(i + k) % variants.length];
      // lets the previous run's background work settle (a reused thread collects its garbage after answering; a
      // replaced one has its successor booting)
      await sleep(opts.gapMs);
      const m = await variant.measure(workload);
      checkSameWork(m, ref, variant, workload);
      if (i >= opts.warmup) samples.get(variant.name)!.push(m.ms);
    }
  }
  if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
  return samples;
}

const ms = (x: number): string => x.toFixed(1).padStart(9);
const signed = (x: number): string => `${x >= 0 ? "+" : ""}${x.toFixed(1)}`;

/** The workload's table, ratio and check lines, and its fixed overhead (runtime median − bare median) cold and warm. */
function report(
  workload: Workload,
  variants: Variant[],
  samples: Map<string, number[]>,
  ref: Reference,
): { lines: string[]; overhead: Record<Variant["temperature"], number> } {
  const stats = new Map<string, Summary>(variants.map((v) => [v.name, summarize(samples.get(v.name)!)]));
  const lines = [`${workload.name}: sieve ${workload.args.join(" ")}`, `  ${"variant".padEnd(14)} ${"median ms".padStart(9)} ${"p90 ms".padStart(9)} ${"min ms".padStart(9)}`];
  for (const v of variants) {
    const s = stats.get(v.name)!;
    lines.push(`  ${v.name.padEnd(14)} ${ms(s.median)} ${ms(s.p90)} ${ms(s.min)}`);
  }
  const medianOf = (side: Variant["side"], temperature: Variant["temperature"]): number =>
    stats.get(variants.find((v) => v.side === side && v.temperature === temperature)!.name)!.median;
  const overhead = { cold: medianOf("runtime", "cold") - medianOf("bare", "cold"), warm: medianOf("runtime", "warm") - medianOf("bare", "warm") };
  const compare = (temperature: Variant["temperature"]): string => {
    const ratio = medianOf("runtime", temperature) / medianOf("bare", temperature);
    return `${temperature} ${ratio.toFixed(2)}x (${signed(overhead[temperature])} ms)`;
  };
  lines.push(`  runtime/bare (medians): ${compare("cold")}, ${compare("warm")}`);
  const runs = [...samples.values()].reduce((n, s) => n + s.length, 0);
  lines.push(`  same work: result.json ${ref.resultJson.toString("utf8").trim()} in all ${runs} measured runs; runtime digest = directoryDigest(bare /out) ${ref.digest.slice(0, 18)}…`);
  return { lines, overhead };
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv);
  // node:wasi announces itself as experimental on first use; the benchmark knows, and keeps its output clean.
  process.removeAllListeners("warning");
  process.on("warning", (w) => w.name !== "ExperimentalWarning" && console.warn(`${w.name}: ${w.message}`));

  const bytes = new Uint8Array(await readFile(APP_PATH));
  const workloads: Workload[] = [
    { name: "cpu-heavy", args: ["--n", String(opts.n), "--rounds", String(opts.rounds)] },
    { name: "tiny", args: ["--n", "1000"] },
  ];
  const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
  console.log(`Concord runtime benchmark: node ${process.version}, ${platform()}-${arch()}, ${cpu} x${cpus().length}`);
  console.log(
    `app ${relative(process.cwd(), APP_PATH)} (${bytes.length} bytes, sha256 ${createHash("sha256").update(bytes).digest("hex").slice(0, 16)}…); ` +
      `${opts.iterations} measured iterations per variant after ${opts.warmup} warm-up (discarded)`,
  );
  console.log(`variants interleaved round-robin (first variant rotates each iteration); ${opts.gapMs} ms idle gap before every run, so the runtime's idle thread is ready before a warm run`);
  console.log("cold: unseen module bytes (nonce custom section) so nothing is cached; runtime cold = new Runtime, no idle thread");
  console.log("warm: module compiled once and reused; runtime warm = one Runtime (module cached, the previous run's thread reused)");

  const started = performance.now();
  const { variants, close } = await makeVariants(bytes);
  const overhead: string[] = [];
  try {
    for (const workload of workloads) {
      const ref = await referenceOutput(bytes, workload);
      const samples = await measureWorkload(variants, workload, ref, opts);
      const { lines, overhead: o } = report(workload, variants, samples, ref);
      console.log(["", ...lines].join("\n"));
      overhead.push(`${workload.name} cold ${signed(o.cold)} ms, warm ${signed(o.warm)} ms`);
    }
  } finally {
    await close();
  }
  console.log("");
  console.log(`fixed overhead per run (runtime median - bare median): ${overhead.join("; ")}`);
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((e: unknown) => {
  const err = e as Error & { code?: string };
  console.error(`bench:runtime: ${err.code ? `${err.code}: ` : ""}${err.message}`);
  process.exitCode = 1;
});
