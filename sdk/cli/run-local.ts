/**
 * `concord run-local <app>`: runs an app through the very runtime the workers use (worker/runtime) and prints its
 * result digest and output, so an app developer sees what workers will agree on before publishing. `<app>` is a
 * WebAssembly file (path or file:// URI) or `sql` for the built-in SQL runtime. Needs no chain and no key.
 */
import { createHash } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import type { Wrap } from "./command";
import { CliError } from "./errors";
import { formatParams, parseParams } from "../params";
import { resultDigest } from "../encoding";
import { RESULT_FILE, Runtime, type RunResult } from "../../worker/runtime";
import type { CliContext } from "./context";

export interface RunLocalOptions {
  dataset?: string;
  datasetName?: string;
  params?: string;
  arg?: string[];
  query?: string;
  seed: string;
  checksum?: string;
  out?: string;
  timeout: string;
  memory: string;
}

export const DEFAULT_SEED = `0x${"0".repeat(64)}`;
const PREVIEW_BYTES = 4096;

/** Adds the options shared by `run-local` and `verify-determinism`. */
export function runOptions(command: Command): Command {
  return command
    .option("--dataset <file>", "dataset file, seen by the app as /in/dataset (a SQLite file or CSV for sql)")
    .option("--dataset-name <name>", "table name of a CSV dataset in the sql runtime (default: the file's base name)")
    .option("--params <json>", 'the request params, e.g. {"args":["--n","1000"]}')
    .option("--arg <value>", "one app argument (repeatable; instead of --params)", (v: string, all: string[] = []) => [...all, v])
    .option("--query <sql>", "the SQL query of the sql runtime (instead of --params)")
    .option("--seed <taskId>", "the task id seeding the virtual clock and randomness", DEFAULT_SEED)
    .option("--checksum <0x…>", "refuse the app unless its sha256 matches")
    .option("--timeout <seconds>", "wall-clock deadline", "60")
    .option("--memory <MiB>", "WebAssembly memory limit", "256");
}

function positive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new CliError("USAGE", `${flag} must be a positive number, got "${value}"`);
  return n;
}

function localPath(spec: string): string {
  if (spec.startsWith("file:")) return fileURLToPath(spec);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new CliError("USAGE", `run-local takes a local file (path or file://), not ${spec.split(":")[0]}: download it first`);
  }
  return isAbsolute(spec) ? spec : resolve(spec);
}

/** The params string from --params or --arg/--query, validated. */
export function paramsOf(options: RunLocalOptions): string {
  if (options.params !== undefined && (options.arg?.length || options.query !== undefined)) {
    throw new CliError("USAGE", "give either --params or --arg/--query, not both");
  }
  const params = options.params ?? formatParams({ args: options.arg, query: options.query });
  parseParams(params); // a ParamsError is reported as one line
  return params;
}

export async function runLocal(app: string, options: RunLocalOptions): Promise<RunResult> {
  const params = paramsOf(options);
  const runtime = new Runtime({
    limits: { timeoutMs: positive(options.timeout, "--timeout") * 1000, memoryBytes: positive(options.memory, "--memory") * 1024 * 1024 },
  });
  const dataset = options.dataset ? localPath(options.dataset) : undefined;
  const datasetName = options.datasetName ?? dataset?.split("/").pop()?.replace(/\.[^.]*$/, "");
  const common = {
    params,
    seed: options.seed,
    outputDir: options.out ? localPath(options.out) : undefined,
    dataset: dataset ? { path: dataset, name: datasetName } : undefined,
  };
  if (app === "sql") return runtime.run({ runtime: "sql", ...common });
  const path = localPath(app);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new CliError("FILE", `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (options.checksum !== undefined) {
    const actual = `0x${createHash("sha256").update(bytes).digest("hex")}`;
    if (actual !== options.checksum.toLowerCase()) {
      throw new CliError("INVALID_INPUT", `checksum mismatch: ${path} has sha256 ${actual}, expected ${options.checksum}`);
    }
  }
  return runtime.run({ runtime: "wasi", app: bytes, ...common });
}

/** What `run-local --json` prints; `verify-determinism` compares these across processes. */
export async function describeRun(r: RunResult): Promise<Record<string, unknown>> {
  const files = [];
  for (const f of r.files) {
    files.push({ ...f, digest: resultDigest(await readFile(`${r.outputDir}/${f.path}`)) });
  }
  const result = r.files.some((f) => f.path === RESULT_FILE)
    ? (await readFile(`${r.outputDir}/${RESULT_FILE}`)).subarray(0, PREVIEW_BYTES).toString("utf8")
    : undefined;
  return {
    digest: r.digest,
    callbackData: r.callbackData ? `0x${Buffer.from(r.callbackData).toString("hex")}` : undefined,
    files,
    outputBytes: r.outputBytes,
    durationMs: Math.round(r.durationMs),
    result,
    stdout: Buffer.from(r.stdout).toString("utf8"),
    stderr: Buffer.from(r.stderr).toString("utf8"),
  };
}

async function printRun(ctx: CliContext, r: RunResult, kept: boolean): Promise<void> {
  const d = await describeRun(r);
  ctx.print({ ...d, outputDir: kept ? r.outputDir : undefined }, () => {
    const lines = [`digest   ${r.digest}`, `duration ${d.durationMs} ms`];
    if (d.callbackData) lines.push(`callback ${d.callbackData}`);
    lines.push(`output   ${kept ? r.outputDir : "(temporary, removed: use --out <dir> to keep it)"}`);
    for (const f of d.files as { path: string; size: number }[]) lines.push(`  ${f.path}  ${f.size} B`);
    if (d.result !== undefined) lines.push(`${RESULT_FILE}:`, `  ${d.result}`);
    if (d.stdout) lines.push("stdout:", ...(d.stdout as string).trimEnd().split("\n").map((l) => `  ${l}`));
    if (d.stderr) lines.push("stderr:", ...(d.stderr as string).trimEnd().split("\n").map((l) => `  ${l}`));
    return lines;
  });
}

export function registerRunLocalCommand(program: Command, wrap: Wrap): void {
  runOptions(
    program
      .command("run-local")
      .argument("<app>", "a WebAssembly file (path or file:// URI), or sql")
      .description("run an app in the workers' sandbox and print its result digest and output"),
  )
    .option("--out <dir>", "keep the output in this (new or empty) directory")
    .action(
      wrap<RunLocalOptions>(async (ctx, args, options) => {
        const r = await runLocal(args[0] as string, options);
        try {
          await printRun(ctx, r, options.out !== undefined);
        } finally {
          if (options.out === undefined) await rm(r.outputDir, { recursive: true, force: true });
        }
      }),
    );
}
