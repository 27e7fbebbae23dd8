/**
 * Results kept by the scheduler, addressed by their digest (what the consensus agreed on), so anyone can fetch a
 * task's output and check it against the chain. `put` refuses content that does not hash to the digest, checked in
 * memory before anything is written: for an ordinary deal the digest is `directoryDigest` of the files (`filesDigest`
 * gives it without writing them), for a callback deal it is keccak256 of the callback bytes. Layout, one directory
 * per digest, made complete in a temporary directory then renamed into place (a reader never sees half a result):
 *
 *   <dir>/<digest>/manifest.json   {digest, kind: "directory"|"callback", files: [{path, size}], storedAt}
 *   <dir>/<digest>/files/<path>    the result files
 */
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { getBytes, keccak256 } from "ethers";
import { canonicalJson, filesDigest, parseJsonExact } from "../../sdk/encoding";

export type ResultStoreErrorCode =
  | "INVALID_DIGEST"
  | "INVALID_PATH"
  | "DUPLICATE_PATH"
  | "TOO_MANY_FILES"
  | "TOO_LARGE"
  | "DIGEST_MISMATCH";

export class ResultStoreError extends Error {
  override readonly name = "ResultStoreError";
  constructor(
    readonly code: ResultStoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ResultFileInput {
  /** Relative path with "/" separators, e.g. `result.json` or `plots/a.png`. */
  path: string;
  content: Uint8Array;
}

export interface ResultFileInfo {
  path: string;
  size: number;
}

export interface StoredResult {
  digest: string;
  /** `callback`: the digest is keccak256 of `callback-data`; `directory`: the directoryDigest of the files. */
  kind: "directory" | "callback";
  files: ResultFileInfo[];
  storedAt: string;
}

export interface ResultStoreOptions {
  dir: string;
  /** Total bytes of one result (the runtime's output limit). */
  maxBytes: number;
  maxFiles: number;
}

export const defaultResultStoreOptions: Omit<ResultStoreOptions, "dir"> = { maxBytes: 16 * 1024 * 1024, maxFiles: 1000 };

/** The file that holds a callback deal's raw bytes (what the app wrote to /out/callback-data). */
export const CALLBACK_FILE = "callback-data";
const MAX_PATH_LENGTH = 1024;
const DIGEST = /^0x[0-9a-fA-F]{64}$/;

/** A digest as stored (lowercase). @throws ResultStoreError INVALID_DIGEST */
export function normaliseDigest(digest: string): string {
  if (typeof digest !== "string" || !DIGEST.test(digest)) {
    throw new ResultStoreError("INVALID_DIGEST", `expected a result digest (0x + 64 hex), got ${JSON.stringify(String(digest).slice(0, 80))}`);
  }
  return digest.toLowerCase();
}

/** Refuses any path that could leave the result's directory or that the directory digest would read differently. */
export function checkResultPath(path: string): string {
  const fail = (why: string) => new ResultStoreError("INVALID_PATH", `invalid result path ${JSON.stringify(String(path).slice(0, 80))}: ${why}`);
  if (typeof path !== "string" || path.length === 0) throw fail("empty");
  if (path.length > MAX_PATH_LENGTH) throw fail(`longer than ${MAX_PATH_LENGTH} characters`);
  if (path.includes("\0")) throw fail("contains NUL");
  if (path.includes("\\")) throw fail('contains "\\" (use "/")');
  if (path.startsWith("/")) throw fail("absolute");
  const segments = path.split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) throw fail('empty, "." or ".." segment');
  if (path.normalize("NFC") !== path) throw fail("not NFC-normalised");
  return path;
}

/** Files as they travel in the session's `revealed` frame (base64). */
export function decodeResultFiles(files: readonly { path: string; base64: string }[]): ResultFileInput[] {
  return files.map((f) => ({ path: f.path, content: Buffer.from(f.base64, "base64") }));
}

function checkFiles(files: readonly ResultFileInput[], opts: ResultStoreOptions): void {
  if (files.length > opts.maxFiles) throw new ResultStoreError("TOO_MANY_FILES", `${files.length} files, more than the limit of ${opts.maxFiles}`);
  const paths = new Set<string>();
  let total = 0;
  for (const f of files) {
    checkResultPath(f.path);
    if (paths.has(f.path)) throw new ResultStoreError("DUPLICATE_PATH", `two files are named ${JSON.stringify(f.path)}`);
    paths.add(f.path);
    total += f.content.byteLength;
  }
  if (total > opts.maxBytes) throw new ResultStoreError("TOO_LARGE", `the result holds ${total} bytes, more than the limit of ${opts.maxBytes}`);
  for (const p of paths) {
    const segments = p.split("/");
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join("/");
      if (paths.has(parent)) throw new ResultStoreError("INVALID_PATH", `${JSON.stringify(parent)} is both a file and a directory`);
    }
  }
}

/** A callback deal's files: `files` plus `callback-data`, the callback bytes. @throws ResultStoreError DIGEST_MISMATCH */
function withCallbackFile(digest: string, files: readonly ResultFileInput[], callback: Uint8Array): ResultFileInput[] {
  const actual = keccak256(callback);
  if (actual !== digest) throw new ResultStoreError("DIGEST_MISMATCH", `keccak256 of the callback data is ${actual}, not ${digest}`);
  const given = files.find((f) => f.path === CALLBACK_FILE);
  if (!given) return [...files, { path: CALLBACK_FILE, content: callback }];
  if (!Buffer.from(given.content).equals(Buffer.from(callback))) {
    throw new ResultStoreError("DIGEST_MISMATCH", `the file ${CALLBACK_FILE} differs from the callback data`);
  }
  return [...files];
}

/** Refuses files (through `checkFiles` already) whose directoryDigest, computed in memory, is not `digest`. */
function checkFilesDigest(digest: string, files: readonly ResultFileInput[]): void {
  const actual = filesDigest(files.map((f) => ({ path: f.path, bytes: f.content })));
  if (actual !== digest) throw new ResultStoreError("DIGEST_MISMATCH", `the files digest to ${actual}, not ${digest}`);
}

export class ResultStore {
  readonly options: ResultStoreOptions;
  /** Writes in flight by digest: the puts of one digest that overlap (a trust-q task's reveals) share one write. */
  private readonly writing = new Map<string, Promise<StoredResult>>();

  constructor(options: Partial<ResultStoreOptions> & { dir: string }) {
    this.options = { ...defaultResultStoreOptions, ...options };
  }

  private dirOf(digest: string): string {
    return join(this.options.dir, digest);
  }

  /**
   * Stores a result after checking that it hashes to `digest`: keccak256(callbackData) for a callback deal (the
   * bytes are also kept as the file `callback-data`), the directoryDigest of `files` otherwise. Every put checks its
   * own input first; then a digest already stored is a no-op and one being stored is awaited (the first content
   * stored is kept), returning that manifest. A put whose shared write failed makes its own.
   * @throws ResultStoreError (nothing is written then)
   */
  async put(digestInput: string, files: readonly ResultFileInput[], options: { callbackData?: Uint8Array | string | null } = {}): Promise<StoredResult> {
    const digest = normaliseDigest(digestInput);
    checkFiles(files, this.options);
    const callback = options.callbackData == null ? null : getBytes(options.callbackData);
    if (!callback) checkFilesDigest(digest, files);
    const all = callback ? withCallbackFile(digest, files, callback) : files;

    // No await between finding no write in flight and registering ours: overlapping puts cannot both write.
    for (let shared = this.writing.get(digest); shared; shared = this.writing.get(digest)) {
      try {
        return await shared;
      } catch {
        // That write failed (its owner reports why): ours may not.
      }
    }
    const write = this.write(digest, all, callback ? "callback" : "directory");
    this.writing.set(digest, write);
    try {
      return await write;
    } finally {
      if (this.writing.get(digest) === write) this.writing.delete(digest);
    }
  }

  /** Writes checked files unless the digest is stored already: complete in a temporary directory, then renamed. */
  private async write(digest: string, files: readonly ResultFileInput[], kind: StoredResult["kind"]): Promise<StoredResult> {
    const existing = await this.get(digest);
    if (existing) return existing;

    await mkdir(this.options.dir, { recursive: true });
    const tmp = await mkdtemp(join(this.options.dir, ".incoming-"));
    try {
      const filesDir = join(tmp, "files");
      await mkdir(filesDir);
      for (const f of files) {
        const target = join(filesDir, ...f.path.split("/"));
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, f.content);
      }
      const stored: StoredResult = {
        digest,
        kind,
        files: files.map((f) => ({ path: f.path, size: f.content.byteLength })).sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path))),
        storedAt: new Date().toISOString(),
      };
      await writeFile(join(tmp, "manifest.json"), `${JSON.stringify(stored, null, 2)}\n`);
      try {
        await rename(tmp, this.dirOf(digest));
      } catch (error) {
        // Another store on this directory (another scheduler process) stored the digest first: its content hashes to
        // the digest too, keep it.
        const raced = await this.get(digest);
        if (raced) return raced;
        throw error;
      }
      return stored;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** The manifest of a stored result, or null. @throws ResultStoreError INVALID_DIGEST */
  async get(digestInput: string): Promise<StoredResult | null> {
    const digest = normaliseDigest(digestInput);
    try {
      return JSON.parse(await readFile(join(this.dirOf(digest), "manifest.json"), "utf8")) as StoredResult;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
  }

  async has(digest: string): Promise<boolean> {
    return (await this.get(digest)) !== null;
  }

  /** The bytes of one file of a stored result, or null when the result or the file is unknown. */
  async readFile(digestInput: string, path: string): Promise<Buffer | null> {
    const manifest = await this.get(digestInput);
    if (!manifest) return null;
    checkResultPath(path);
    if (!manifest.files.some((f) => f.path === path)) return null;
    return readFile(join(this.dirOf(manifest.digest), "files", ...path.split("/")));
  }

  /**
   * The canonical JSON text of the result's `result.json` (integers beyond 2^53 kept exact), or null when there is
   * none or it is not JSON.
   */
  async resultJson(digest: string): Promise<string | null> {
    const bytes = await this.readFile(digest, "result.json");
    if (!bytes) return null;
    try {
      return canonicalJson(parseJsonExact(new TextDecoder("utf-8", { fatal: true }).decode(bytes)));
    } catch {
      return null;
    }
  }
}
