/**
 * The worker's on-disk store of apps and datasets, addressed by their registered sha256 checksum.
 *
 * Layout: `<dir>/sha256/<64 lowercase hex>` holds verified files; `<dir>/sha256/.partial-<hex>-<random>` are downloads
 * in progress. A file gets its final name only by an atomic rename, after its bytes were hashed while being written,
 * found equal to the checksum, flushed to disk and made read-only (0444).
 *
 * What a restart trusts, and why it is cheap: a regular, read-only file whose name is 64 hex digits was put there by
 * that rename, so its name IS its hash; it is not hashed again (datasets can be gigabytes). Anything else is not ours
 * to trust: partial downloads are deleted, and a final-named file that is writable or not a regular file is deleted
 * too (something other than this cache wrote it). Unrelated names are left alone and not counted. What this does not
 * defend against: someone with write access to the directory replacing a file by another read-only file. A worker
 * whose disk is that exposed has bigger problems than its cache.
 *
 * One ArtifactCache per directory: two processes sharing a directory would delete each other's partial downloads.
 *
 * Eviction (least recently used first) runs after each insertion and on `evictToFit()`, until the total is at most
 * `maxBytes`. It never removes an entry that is in use (leased by `acquire` and not yet released) nor the most
 * recently used entry, which is the one a `get` just returned. So the total may stay above `maxBytes` while leases are
 * held, or when one artifact alone is larger than the cache; the next insertion tries again.
 */
import { createHash, randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, rmSync, type Stats } from "node:fs";
import { chmod, open, rename, rm, utimes, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { RuntimeError, isRuntimeError } from "./errors";
import { DEFAULT_FETCH_TIMEOUT_MS, describeUri, openArtifactStream } from "./fetch";

export interface ArtifactCacheOptions {
  /** the cache directory (created when missing); files live in `<dir>/sha256/` */
  dir: string;
  /** the total size the cache shrinks to after each insertion; also the default cap of one artifact */
  maxBytes: number;
  /** the default wall-clock budget of one download */
  fetchTimeoutMs?: number;
}

export interface GetOptions {
  /** refuse an artifact above this many bytes (FETCH_FAILED "too large"); default: the cache's maxBytes */
  maxBytes?: number;
  /** cancels this caller's wait (CANCELLED); a shared download stops only when all its waiters cancelled */
  signal?: AbortSignal;
  /** the download's wall-clock budget; for a shared download, the first caller's budget applies */
  timeoutMs?: number;
}

/** A verified file that eviction will not remove until `release()` is called. */
export interface Lease {
  path: string;
  /** 0x-prefixed lowercase hex */
  checksum: string;
  size: number;
  /** idempotent */
  release(): void;
}

export interface CacheEntryInfo {
  checksum: string;
  size: number;
  inUse: boolean;
}

/** Prefix of in-progress downloads; anything so named at startup was left by a crash and is deleted. */
export const PARTIAL_PREFIX = ".partial-";

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Accepts a sha256 checksum as the registries store it (bytes32, 0x-prefixed hex) or as bare hex; returns the bare
 * lowercase hex. Throws FETCH_FAILED on anything else: an artifact whose checksum cannot be checked is never fetched.
 */
export function normalizeChecksum(checksum: string): string {
  const text = typeof checksum === "string" ? checksum : String(checksum);
  const hex = (/^0x/i.test(text) ? text.slice(2) : text).toLowerCase();
  if (!HEX64.test(hex)) {
    const shown = text.length > 80 ? text.slice(0, 80) + "…" : text;
    throw new RuntimeError(
      "FETCH_FAILED",
      `invalid checksum "${shown}": expected a sha256 as 64 hex digits, optionally 0x-prefixed`,
    );
  }
  if (/^0+$/.test(hex)) throw new RuntimeError("FETCH_FAILED", "invalid checksum: zero (no checksum registered)");
  return hex;
}

interface Entry {
  size: number;
  /** logical clock of the last use; larger is more recent */
  lastUse: number;
  /** leases not yet released */
  pins: number;
}

interface Download {
  uri: string;
  /** callers still waiting; when the last one cancels, the download is aborted */
  waiters: number;
  controller: AbortController;
  done: Promise<Entry>;
}

export class ArtifactCache {
  readonly dir: string;
  readonly maxBytes: number;
  private readonly root: string;
  private readonly fetchTimeoutMs: number;
  private readonly entries = new Map<string, Entry>();
  private readonly downloads = new Map<string, Download>();
  private total = 0;
  private clock = 0;
  private mostRecent: string | undefined;

  /** Opens (or creates) the cache directory and rebuilds the index from it; see the file comment for what is trusted. */
  constructor(opts: ArtifactCacheOptions) {
    if (typeof opts?.dir !== "string" || opts.dir === "") throw new TypeError("ArtifactCache: dir must be a path");
    if (typeof opts.maxBytes !== "number" || !(opts.maxBytes >= 0)) {
      throw new RangeError(`ArtifactCache: maxBytes must be a number >= 0, got ${String(opts.maxBytes)}`);
    }
    this.dir = opts.dir;
    this.maxBytes = opts.maxBytes;
    this.fetchTimeoutMs = opts.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
    this.root = join(opts.dir, "sha256");
    mkdirSync(this.root, { recursive: true });
    this.rebuildIndex();
  }

  /** The path a verified artifact has (or would have) in this cache. */
  pathOf(checksum: string): string {
    return join(this.root, normalizeChecksum(checksum));
  }

  /** Whether the index holds this artifact (no disk access). */
  has(checksum: string): boolean {
    return this.entries.has(normalizeChecksum(checksum));
  }

  /** Total bytes of the indexed artifacts. */
  size(): number {
    return this.total;
  }

  /** The indexed artifacts, least recently used first. */
  list(): CacheEntryInfo[] {
    return [...this.entries]
      .sort(([, a], [, b]) => a.lastUse - b.lastUse)
      .map(([hex, e]) => ({ checksum: "0x" + hex, size: e.size, inUse: e.pins > 0 }));
  }

  /**
   * The local path of the verified artifact, fetched from `uri` when it is not cached yet. The path stays valid until
   * the entry is evicted, which never happens while it is the most recently used one; a caller that reads it while
   * other artifacts are fetched should use `acquire` instead.
   */
  async get(uri: string, checksum: string, opts: GetOptions = {}): Promise<string> {
    const lease = await this.acquire(uri, checksum, opts);
    lease.release();
    return lease.path;
  }

  /** Like `get`, but the entry is pinned (never evicted) until the lease is released. */
  async acquire(uri: string, checksum: string, opts: GetOptions = {}): Promise<Lease> {
    const hex = normalizeChecksum(checksum);
    const cap = opts.maxBytes ?? this.maxBytes;
    for (;;) {
      if (opts.signal?.aborted) throw new RuntimeError("CANCELLED", `fetch of ${describeUri(uri)} cancelled`);
      const hit = await this.lookup(hex);
      if (hit) return this.lease(hex, hit, uri, cap, true);

      let download = this.downloads.get(hex);
      const joined = download !== undefined;
      download ??= this.startDownload(uri, hex, cap, opts.timeoutMs ?? this.fetchTimeoutMs);
      let entry: Entry;
      try {
        entry = await this.wait(hex, download, uri, opts.signal);
      } catch (e) {
        // Someone else's download from another URI failed: ours may still work.
        if (joined && download.uri !== uri && !isRuntimeError(e, "CANCELLED")) continue;
        throw e;
      }
      // No await between the download's end and this lease: eviction (which needs disk I/O first) cannot slip in.
      if (this.entries.get(hex) === entry) return this.lease(hex, entry, uri, cap, false);
    }
  }

  /** Removes one artifact unless it is in use; returns whether it was removed. */
  async evict(checksum: string): Promise<boolean> {
    const hex = normalizeChecksum(checksum);
    const entry = this.entries.get(hex);
    if (entry === undefined || entry.pins > 0) return false;
    await this.remove(hex, entry);
    return true;
  }

  /** Evicts least recently used artifacts until the total is at most `maxBytes`; returns the bytes freed. */
  async evictToFit(maxBytes = this.maxBytes): Promise<number> {
    const victims = this.chooseVictims(maxBytes);
    await Promise.all(victims.map(([hex, entry]) => this.remove(hex, entry)));
    return victims.reduce((sum, [, e]) => sum + e.size, 0);
  }

  // -------------------------------------------------------------------------------------------------------- index

  private rebuildIndex(): void {
    const found: Array<{ hex: string; size: number; mtimeMs: number }> = [];
    for (const name of readdirSync(this.root)) {
      const path = join(this.root, name);
      if (name.startsWith(PARTIAL_PREFIX)) {
        rmSync(path, { force: true, recursive: true });
        continue;
      }
      if (!HEX64.test(name)) continue;
      const info = lstatSync(path, { throwIfNoEntry: false });
      if (info === undefined) continue;
      if (!info.isFile() || (info.mode & 0o222) !== 0) {
        rmSync(path, { force: true, recursive: true });
        continue;
      }
      found.push({ hex: name, size: info.size, mtimeMs: info.mtimeMs });
    }
    // The file's mtime is its last use (hits touch it), so the LRU order survives a restart.
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of found) this.insert(f.hex, f.size);
    for (const [hex, entry] of this.chooseVictims(this.maxBytes)) {
      rmSync(join(this.root, hex), { force: true });
      this.forget(hex, entry);
    }
  }

  /** The entry when its file is on disk with the indexed size; a read-only file not yet indexed is adopted. */
  private async lookup(hex: string): Promise<Entry | undefined> {
    const path = join(this.root, hex);
    const indexed = this.entries.get(hex);
    // synchronous: a hit is on the path of every run, and a thread-pool round trip waits for a free thread when the
    // machine is busy; one lstat of a local file is microseconds
    const info = statOrUndefined(path);
    if (info === undefined || !info.isFile() || (info.mode & 0o222) !== 0) {
      if (indexed) this.forget(hex, indexed); // deleted or replaced behind our back
      return undefined;
    }
    if (indexed) {
      if (info.size === indexed.size) return indexed;
      this.forget(hex, indexed);
      await rm(path, { force: true });
      return undefined;
    }
    return this.insert(hex, info.size);
  }

  private insert(hex: string, size: number): Entry {
    const previous = this.entries.get(hex);
    if (previous?.size === size) {
      // adopted from disk by a concurrent lookup just after the rename: keep that entry, and its leases
      previous.lastUse = ++this.clock;
      this.mostRecent = hex;
      return previous;
    }
    if (previous) this.forget(hex, previous);
    const entry: Entry = { size, lastUse: ++this.clock, pins: 0 };
    this.entries.set(hex, entry);
    this.total += size;
    this.mostRecent = hex;
    return entry;
  }

  private forget(hex: string, entry: Entry): void {
    if (this.entries.get(hex) !== entry) return;
    this.entries.delete(hex);
    this.total -= entry.size;
    if (this.mostRecent === hex) this.mostRecent = undefined;
  }

  private async remove(hex: string, entry: Entry): Promise<void> {
    this.forget(hex, entry);
    // unlink needs write permission on the directory only, so the read-only mode does not get in the way
    await rm(join(this.root, hex), { force: true }).catch(() => undefined);
  }

  /** Least recently used first, skipping leased entries and the most recent one, until the total fits `limit`. */
  private chooseVictims(limit: number): Array<[string, Entry]> {
    let total = this.total;
    const victims: Array<[string, Entry]> = [];
    if (total <= limit) return victims;
    const candidates = [...this.entries]
      .filter(([hex, e]) => e.pins === 0 && hex !== this.mostRecent)
      .sort(([, a], [, b]) => a.lastUse - b.lastUse);
    for (const candidate of candidates) {
      if (total <= limit) break;
      victims.push(candidate);
      total -= candidate[1].size;
    }
    return victims;
  }

  /** Pins the entry for a caller; `touch` records the use in the file's mtime (a fresh download's mtime is fresh). */
  private lease(hex: string, entry: Entry, uri: string, cap: number, touch: boolean): Lease {
    if (entry.size > cap) {
      throw new RuntimeError("FETCH_FAILED", `too large: ${describeUri(uri)} is ${entry.size} bytes, the limit is ${cap}`);
    }
    entry.lastUse = ++this.clock;
    entry.pins++;
    this.mostRecent = hex;
    const path = join(this.root, hex);
    if (touch) {
      const now = new Date();
      // Best effort, not awaited: the mtime only carries the LRU order across restarts.
      utimes(path, now, now).catch(() => undefined);
    }
    let released = false;
    return {
      path,
      checksum: "0x" + hex,
      size: entry.size,
      release: () => {
        if (released) return;
        released = true;
        entry.pins--;
      },
    };
  }

  // ----------------------------------------------------------------------------------------------------- download

  private startDownload(uri: string, hex: string, cap: number, timeoutMs: number): Download {
    const controller = new AbortController();
    const done = this.download(uri, hex, cap, timeoutMs, controller.signal).finally(() => this.dropDownload(hex, download));
    const download: Download = { uri, waiters: 0, controller, done };
    this.downloads.set(hex, download);
    return download;
  }

  private dropDownload(hex: string, download: Download): void {
    if (this.downloads.get(hex) === download) this.downloads.delete(hex);
  }

  /** Waits for a shared download; this caller's signal only ends its own wait, unless it was the last waiter. */
  private wait(hex: string, download: Download, uri: string, signal: AbortSignal | undefined): Promise<Entry> {
    return new Promise<Entry>((resolve, reject) => {
      let settled = false;
      download.waiters++;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        download.waiters--;
        signal?.removeEventListener("abort", onAbort);
        return true;
      };
      const onAbort = (): void => {
        if (!settle()) return;
        if (download.waiters === 0) {
          // nobody wants it any more; a caller arriving now starts afresh instead of joining a dying download
          this.dropDownload(hex, download);
          download.controller.abort();
        }
        reject(new RuntimeError("CANCELLED", `fetch of ${describeUri(uri)} cancelled`));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      download.done.then(
        (entry) => {
          if (settle()) resolve(entry);
        },
        (e: unknown) => {
          if (settle()) reject(e);
        },
      );
    });
  }

  /** Streams `uri` into a partial file while hashing it; only a verified file gets its final name. */
  private async download(uri: string, hex: string, cap: number, timeoutMs: number, signal: AbortSignal): Promise<Entry> {
    const partial = join(this.root, `${PARTIAL_PREFIX}${hex}-${randomBytes(6).toString("hex")}`);
    const final = join(this.root, hex);
    let file: FileHandle | undefined;
    try {
      const source = await openArtifactStream(uri, { maxBytes: cap, signal, timeoutMs });
      try {
        file = await open(partial, "wx", 0o600);
      } catch (e) {
        await source.cancel();
        throw e;
      }
      const hash = createHash("sha256");
      let size = 0;
      for await (const chunk of source.chunks) {
        hash.update(chunk);
        await writeAll(file, chunk);
        size += chunk.byteLength;
      }
      // Flushed before the rename: after a crash, a final name must never point at bytes still in a page cache.
      await file.sync();
      await file.close();
      file = undefined;
      const actual = hash.digest("hex");
      if (actual !== hex) {
        throw new RuntimeError(
          "CHECKSUM_MISMATCH",
          `checksum mismatch for ${describeUri(uri)}: expected 0x${hex}, got 0x${actual}`,
        );
      }
      await chmod(partial, 0o444);
      await rename(partial, final);
      await syncDirectory(this.root);
      const entry = this.insert(hex, size);
      // Pinned while older entries are unlinked, so that a concurrent insertion cannot evict it before its waiters
      // lease it (they do so without awaiting anything once this returns).
      entry.pins++;
      try {
        await this.evictToFit();
      } finally {
        entry.pins--;
      }
      return entry;
    } catch (e) {
      await file?.close().catch(() => undefined);
      await rm(partial, { force: true }).catch(() => undefined);
      if (isRuntimeError(e)) throw e;
      const err = e as NodeJS.ErrnoException;
      throw new RuntimeError("FETCH_FAILED", `cannot store ${describeUri(uri)} in the cache: ${err.code ?? err.message}`, {
        cause: e,
      });
    }
  }
}

async function writeAll(file: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await file.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

/** Makes the rename itself durable; some file systems (and platforms) refuse to open a directory: best effort. */
async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, "r").catch(() => undefined);
  if (dir === undefined) return;
  await dir.sync().catch(() => undefined);
  await dir.close().catch(() => undefined);
}

/** lstat, undefined when the path cannot be read (absent, or no permission). */
function statOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}
