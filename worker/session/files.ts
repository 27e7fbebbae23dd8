/**
 * The output directory of a run as the `revealed` frame carries it: every regular file, its path relative to /out
 * with `/` separators, its bytes in base64, sorted by path (byte order) so that equal outputs give equal frames.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from "node:fs";
import { lstat, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { z } from "zod";
import { MAX_RESULT_FILES, MAX_RESULT_PATH, type ResultFile } from "../../sdk/session";
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
    let fd: number;
    try {
      fd = openSync(join(dir, ...path.split("/")), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      return undefined;
    }
    try {
      if (!fstatSync(fd).isFile()) return undefined;
      files.push({ path, base64: readFileSync(fd).toString("base64") });
    } finally {
      closeSync(fd);
    }
  }
  return files.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/**
 * Why an output (its files' paths and sizes) could never travel in a `revealed` frame, or null when it can: checked
 * before the commit, since a commit that can never be revealed costs the worker its stake. The estimate counts each
 * path as JSON writes it (escapes included), and `frameBudget` leaves room for the rest of the frame.
 */
export function unrevealable(files: readonly { path: string; size: number }[], frameBudget: number): WorkerError | null {
  if (files.length > MAX_RESULT_FILES) {
    return new WorkerError("RESULT_TOO_LARGE", `the output has ${files.length} files, more than the ${MAX_RESULT_FILES} a reveal carries`);
  }
  const long = files.find((f) => f.path.length > MAX_RESULT_PATH);
  if (long) return new WorkerError("RESULT_TOO_LARGE", `an output path is ${long.path.length} characters long, more than ${MAX_RESULT_PATH}`);
  const framed = files.reduce((n, f) => n + 4 * Math.ceil(f.size / 3) + JSON.stringify(f.path).length + 32, 0);
  if (framed > frameBudget) return new WorkerError("RESULT_TOO_LARGE", `the output takes ${framed} bytes in a frame, more than the session allows`);
  return null;
}

/** The size a list of files adds to a frame (base64 plus JSON punctuation). */
export function framedSize(files: ResultFileFrame[]): number {
  return files.reduce((n, f) => n + f.base64.length + Buffer.byteLength(f.path) + 32, 0);
}
