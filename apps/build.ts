/**
 * Builds the example apps and the generated datasets into their committed outputs:
 *   apps/build/<name>.wasm          (one per app of apps/tools/manifest.ts)
 *   apps/datasets/customers.csv     (apps/tools/datasets.ts)
 *   apps/datasets/customers.sqlite  (the same rows, sql.js `db.export()`)
 * (apps/datasets/corpus.txt is hand-written, not built.)
 *
 *   npx ts-node apps/build.ts           rebuild and overwrite the committed outputs
 *   npx ts-node apps/build.ts --check   build into a temp dir and exit 1 naming every output that differs
 *
 * The outputs are committed because their sha256 is what gets registered on chain: `--check` (run by the tests)
 * proves they are exactly what the sources build to.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { compileApp } from "./tools/asc";
import { customersCsv, customersSqlite, generateCustomers } from "./tools/datasets";
import { APPS } from "./tools/manifest";

/** The apps/ directory (sources and committed outputs). */
export const APPS_DIR = __dirname;

/** Output paths, relative to apps/. */
export function wasmPath(appName: string): string {
  return join("build", `${appName}.wasm`);
}
export const CUSTOMERS_CSV = join("datasets", "customers.csv");
export const CUSTOMERS_SQLITE = join("datasets", "customers.sqlite");
export const CORPUS = join("datasets", "corpus.txt");

export interface BuiltOutput {
  /** relative to apps/ */
  readonly path: string;
  readonly bytes: Uint8Array;
  readonly ms: number;
}

/** Builds every output in memory, in a fixed order. */
export async function buildOutputs(): Promise<BuiltOutput[]> {
  const outputs: BuiltOutput[] = [];
  for (const app of APPS) {
    const started = performance.now();
    const bytes = await compileApp(APPS_DIR, app);
    outputs.push({ path: wasmPath(app.name), bytes, ms: performance.now() - started });
  }
  const started = performance.now();
  const rows = generateCustomers();
  outputs.push({
    path: CUSTOMERS_CSV,
    bytes: Buffer.from(customersCsv(rows), "utf8"),
    ms: performance.now() - started,
  });
  const sqliteStarted = performance.now();
  outputs.push({ path: CUSTOMERS_SQLITE, bytes: await customersSqlite(rows), ms: performance.now() - sqliteStarted });
  return outputs;
}

async function writeOutputs(root: string, outputs: readonly BuiltOutput[]): Promise<void> {
  for (const out of outputs) {
    const target = join(root, out.path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, out.bytes);
  }
}

async function readOrNull(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

export interface CheckResult {
  /** where the fresh build was written; removed again when nothing differs */
  readonly buildDir: string;
  /** outputs (relative to apps/) whose committed file is missing or differs from the fresh build */
  readonly differing: string[];
  readonly outputs: BuiltOutput[];
}

/** Builds into a temp dir and compares with the committed outputs. */
export async function checkOutputs(): Promise<CheckResult> {
  const outputs = await buildOutputs();
  const buildDir = await mkdtemp(join(tmpdir(), "concord-apps-"));
  await writeOutputs(buildDir, outputs);
  const differing: string[] = [];
  for (const out of outputs) {
    const committed = await readOrNull(join(APPS_DIR, out.path));
    if (committed === null || !committed.equals(out.bytes)) differing.push(out.path);
  }
  if (differing.length === 0) await rm(buildDir, { recursive: true, force: true });
  return { buildDir, differing, outputs };
}

function describe(out: BuiltOutput): string {
  return `${out.path.padEnd(28)} ${String(out.bytes.byteLength).padStart(8)} bytes  ${out.ms.toFixed(0).padStart(5)} ms`;
}

async function main(argv: string[]): Promise<number> {
  const unknown = argv.filter((a) => a !== "--check");
  if (unknown.length > 0) {
    console.error(`apps/build.ts: unknown argument ${unknown[0]} (usage: apps/build.ts [--check])`);
    return 2;
  }
  const started = performance.now();
  if (argv.includes("--check")) {
    const result = await checkOutputs();
    for (const out of result.outputs) console.log(describe(out));
    if (result.differing.length > 0) {
      for (const path of result.differing) console.error(`differs from the committed output: apps/${path}`);
      console.error(
        `fresh build in ${result.buildDir}; run "npx ts-node apps/build.ts" to update the committed outputs`,
      );
      return 1;
    }
    console.log(`all ${result.outputs.length} outputs match (${(performance.now() - started).toFixed(0)} ms)`);
    return 0;
  }
  const outputs = await buildOutputs();
  await writeOutputs(APPS_DIR, outputs);
  for (const out of outputs) console.log(describe(out));
  console.log(`wrote ${outputs.length} outputs (${(performance.now() - started).toFixed(0)} ms)`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : String(e));
      process.exit(1);
    },
  );
}
