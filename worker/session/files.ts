/**
 * The output directory of a run as the `revealed` frame carries it: every regular file, its path relative to /out
 * with `/` separators, its bytes in base64, sorted by path (byte order) so that equal outputs give equal frames.
 */
import { lstatSync, readFileSync } from "node:fs";
import { lstat, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { z } from "zod";
import type { ResultFile } from "../../sdk/session";
import { WorkerError } from "../core/errors";

export type ResultFileFrame = z.infer<typeof ResultFile>;

/** Reads the files of `dir`; OUTPUT_GONE when the directory is missing. Links and special files are refused. */
export async function readResultFiles(dir: string): Promise<ResultFileFrame[]> {
  const root = await lstat(dir).catch(() => undefined);
  if (!root?.isDirectory()) throw new WorkerError("OUTPUT_GONE", `the output directory ${dir} is no longer on disk`);
  const files: ResultFileFrame[] = [];
  await walk(dir, "", files);
  return files.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

async function walk(dir: string, prefix: string, out: ResultFileFrame[]): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix + entry.name;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) await walk(full, rel + "/", out);
    else if (entry.isFile()) out.push({ path: rel, base64: (await readFile(full)).toString("base64") });
    else throw new WorkerError("STORE_CORRUPT", `the output ${rel} in ${dir} is neither a file nor a directory`);
  }
}

/**
 * The listed files of a run's output (`paths`, relative, `/`-separated) as `readResultFiles` gives them, read at once:
 * for a small output that goes into its commit record. Undefined when one is not a regular file (the reveal's own
 * read then refuses it).
 */
export function readListedFiles(dir: string, paths: readonly string[]): ResultFileFrame[] | undefined {
  const files: ResultFileFrame[] = [];
  for (const path of paths) {
    const full = join(dir, ...path.split("/"));
    if (!lstatSync(full, { throwIfNoEntry: false })?.isFile()) return undefined;
    files.push({ path, base64: readFileSync(full).toString("base64") });
  }
  return files.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/** The size a list of files adds to a frame (base64 plus JSON punctuation). */
export function framedSize(files: ResultFileFrame[]): number {
  return files.reduce((n, f) => n + f.base64.length + Buffer.byteLength(f.path) + 32, 0);
}
