/**
 * Runs a built app once with plain `node:wasi` (preview1), the way the Concord sandbox lays it out: argv
 * ["app", ...args], preopens "/in" then "/out" (fresh temp dirs), the dataset at /in/dataset, stdout/stderr
 * captured to files. No sandboxing beyond that: this only smoke-tests the apps, it is not the runtime.
 *
 * Keep the apps' memory small here: Node 20's node:wasi corrupts the JS heap (segfault after `start` returns) once
 * a module's linear memory passes roughly 40 MiB, whether the module or the host grew it.
 */
import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WASI } from "node:wasi";

export interface RunOptions {
  args?: string[];
  dataset?: Uint8Array | string;
  env?: Record<string, string>;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  inDir: string;
  outDir: string;
  /** names of the files in /out after the run, sorted */
  outFiles: string[];
  /** /out/result.json parsed, or undefined when there is none */
  result: unknown;
  readOut(name: string): Promise<Buffer>;
  cleanup(): Promise<void>;
}

export const SANDBOX_ENV = { LANG: "C.UTF-8", LC_ALL: "C.UTF-8", TZ: "UTC", HOME: "/" };

export async function runWasi(module: WebAssembly.Module, options: RunOptions = {}): Promise<RunResult> {
  const root = await mkdtemp(join(tmpdir(), "concord-app-run-"));
  const inDir = join(root, "in");
  const outDir = join(root, "out");
  await Promise.all([mkdir(inDir), mkdir(outDir)]);
  if (options.dataset !== undefined) await writeFile(join(inDir, "dataset"), options.dataset);
  const stdoutPath = join(root, "stdout");
  const stderrPath = join(root, "stderr");
  const stdoutFd = openSync(stdoutPath, "w");
  const stderrFd = openSync(stderrPath, "w");
  let code: number;
  try {
    const wasi = new WASI({
      version: "preview1",
      args: ["app", ...(options.args ?? [])],
      env: options.env ?? {
        ...SANDBOX_ENV,
        ...(options.dataset !== undefined ? { CONCORD_DATASET: "/in/dataset" } : {}),
      },
      preopens: { "/in": inDir, "/out": outDir },
      returnOnExit: true,
      stdout: stdoutFd,
      stderr: stderrFd,
    });
    const instance = await WebAssembly.instantiate(module, wasi.getImportObject() as WebAssembly.Imports);
    code = wasi.start(instance);
  } finally {
    closeSync(stdoutFd);
    closeSync(stderrFd);
  }
  const outFiles = (await readdir(outDir)).sort();
  let result: unknown;
  if (outFiles.includes("result.json")) result = JSON.parse(await readFile(join(outDir, "result.json"), "utf8"));
  return {
    code,
    stdout: readFileSync(stdoutPath, "utf8"),
    stderr: readFileSync(stderrPath, "utf8"),
    inDir,
    outDir,
    outFiles,
    result,
    readOut: (name) => readFile(join(outDir, name)),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}
