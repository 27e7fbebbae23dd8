/**
 * Opens an app or dataset by its registered URI as a stream of bytes, never holding the whole file in memory.
 *
 * Supported sources: `file://` URIs (absolute, percent-encoded), plain absolute paths, and `http://` / `https://`
 * through Node's global `fetch`. Everything else (ftp:, data:, ipfs:, relative paths, …) is refused with the list of
 * what is supported, so an owner who registered an unusable URI learns why at once.
 *
 * Every source is bounded twice: by a byte cap (refused early when the declared size is already above it, and counted
 * on the stream whatever the source declared) and by a wall-clock budget covering the whole download, not just the
 * headers, so a server that trickles or hangs cannot hold a worker forever.
 *
 * The checksum is not checked here: the cache (cache.ts) hashes the stream as it writes it to disk.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { fileURLToPath } from "node:url";
import { RuntimeError } from "./errors";

/** What a URI may look like; listed in the "unsupported URI scheme" error. */
export const SUPPORTED_URI_FORMS = ["file:///absolute/path", "/absolute/path", "http://…", "https://…"] as const;

/** Redirects followed before giving up: enough for a CDN hop or two, not a loop. */
export const MAX_REDIRECTS = 5;
export const DEFAULT_FETCH_TIMEOUT_MS = 60_000;

export interface FetchOptions {
  /** refuse the source beyond this many bytes (FETCH_FAILED "too large"); no cap when absent */
  maxBytes?: number;
  /** the caller's cancellation: aborting ends the download with CANCELLED */
  signal?: AbortSignal;
  /** wall-clock budget from the call to the last byte (FETCH_FAILED "timed out") */
  timeoutMs?: number;
}

export interface ArtifactStream {
  /**
   * The bytes, in order. Iterate once. Errors are RuntimeErrors: FETCH_FAILED (I/O, too large, timed out) or
   * CANCELLED. Stopping the iteration early (break / throw) releases the source.
   */
  chunks: AsyncIterable<Uint8Array>;
  /** the size the source declared (file size, Content-Length), when it declared one */
  declaredSize: number | undefined;
  /** releases the source without reading it (needed only when `chunks` is never iterated to its end) */
  cancel(): Promise<void>;
}

/**
 * Opens `uri` for reading. Fails fast (before any body is read) on an unsupported or malformed URI, a missing file,
 * an HTTP error status, too many redirects, or a declared size above `maxBytes`.
 */
export async function openArtifactStream(uri: string, opts: FetchOptions = {}): Promise<ArtifactStream> {
  const source = classifyUri(uri);
  const budget = new Budget(describeUri(uri), opts);
  try {
    return source.kind === "file" ? await openFile(source.path, budget) : await openHttp(source.url, budget);
  } catch (e) {
    budget.dispose();
    throw budget.toError(e, "cannot fetch");
  }
}

// ------------------------------------------------------------------------------------------------------ URI forms

type Source = { kind: "file"; path: string } | { kind: "http"; url: URL };

/** Decides how `uri` is read, or throws FETCH_FAILED saying what is wrong with it. */
export function classifyUri(uri: string): Source {
  if (typeof uri !== "string" || uri.length === 0) {
    throw new RuntimeError("FETCH_FAILED", "empty URI: expected one of " + SUPPORTED_URI_FORMS.join(", "));
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri)?.[1]?.toLowerCase();
  if (scheme === "file") {
    try {
      // fileURLToPath percent-decodes, refuses a remote host and an encoded "/" inside a path segment.
      return { kind: "file", path: fileURLToPath(new URL(uri)) };
    } catch (e) {
      throw new RuntimeError("FETCH_FAILED", `invalid file URI ${describeUri(uri)}: ${(e as Error).message}`, { cause: e });
    }
  }
  if (scheme === "http" || scheme === "https") {
    let url: URL;
    try {
      url = new URL(uri);
    } catch (e) {
      throw new RuntimeError("FETCH_FAILED", `invalid URL ${describeUri(uri)}`, { cause: e });
    }
    return { kind: "http", url };
  }
  // A plain path is taken literally (no percent-decoding), and only when absolute: a relative path would depend on
  // the worker's working directory, which the app owner cannot know.
  if (scheme === undefined && isAbsolute(uri)) return { kind: "file", path: uri };
  const what = scheme === undefined ? "relative path" : `${scheme}:`;
  throw new RuntimeError(
    "FETCH_FAILED",
    `unsupported URI scheme (${what}) in ${describeUri(uri)}: supported are ${SUPPORTED_URI_FORMS.join(", ")}`,
  );
}

/**
 * The URI as it may appear in errors and logs: user:password and the query string are hidden (presigned download
 * URLs carry their credentials there), and very long URIs are shortened.
 */
export function describeUri(uri: string): string {
  let shown = String(uri);
  if (/^https?:/i.test(shown)) {
    try {
      const url = new URL(shown);
      if (url.username || url.password) {
        url.username = "***";
        url.password = "";
      }
      const hidden = url.search !== "";
      url.search = "";
      shown = url.toString() + (hidden ? "?…" : "");
    } catch {
      // malformed: shown as given
    }
  }
  return shown.length > 200 ? shown.slice(0, 200) + "…" : shown;
}

// ---------------------------------------------------------------------------------------------------- local files

async function openFile(path: string, budget: Budget): Promise<ArtifactStream> {
  const info = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new RuntimeError("FETCH_FAILED", `cannot read ${budget.uri}: ${e.code ?? e.message}`, { cause: e });
  });
  // A FIFO or a device could block forever or never end; a directory has no bytes.
  if (!info.isFile()) throw new RuntimeError("FETCH_FAILED", `cannot read ${budget.uri}: not a regular file`);
  budget.checkDeclared(info.size);
  const stream = createReadStream(path, { signal: budget.signal });
  return budget.wrap(stream, info.size, async () => void stream.destroy());
}

// ------------------------------------------------------------------------------------------------------------ HTTP

async function openHttp(start: URL, budget: Budget): Promise<ArtifactStream> {
  let url = start;
  for (let hop = 0; ; hop++) {
    // Redirects are followed by hand: fetch's own limit is 20 and it would follow to any scheme it knows.
    const res = await fetch(url, {
      redirect: "manual",
      signal: budget.signal,
      // the checksum is over the bytes as registered: ask for them unchanged
      headers: { "accept-encoding": "identity" },
    });
    const location = res.headers.get("location");
    if (isRedirect(res.status) && location !== null) {
      await res.body?.cancel().catch(() => undefined);
      if (hop >= MAX_REDIRECTS) {
        throw new RuntimeError("FETCH_FAILED", `cannot fetch ${budget.uri}: more than ${MAX_REDIRECTS} redirects`);
      }
      url = new URL(location, url);
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw new RuntimeError("FETCH_FAILED", `cannot fetch ${budget.uri}: redirected to unsupported scheme ${url.protocol}`);
      }
      continue;
    }
    if (res.status < 200 || res.status > 299) {
      await res.body?.cancel().catch(() => undefined);
      const text = res.statusText ? ` ${res.statusText}` : "";
      throw new RuntimeError("FETCH_FAILED", `cannot fetch ${budget.uri}: HTTP ${res.status}${text}`);
    }
    const length = res.headers.get("content-length");
    const declared = length !== null && /^\d+$/.test(length) ? Number(length) : undefined;
    if (declared !== undefined && budget.exceeds(declared)) {
      await res.body?.cancel().catch(() => undefined);
      budget.checkDeclared(declared); // throws
    }
    const body = res.body;
    if (body === null) return budget.wrap(emptyBody(), declared, async () => undefined);
    return budget.wrap(body, declared, async () => {
      await body.cancel().catch(() => undefined);
    });
  }
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

async function* emptyBody(): AsyncGenerator<Uint8Array> {
  // no bytes
}

// ---------------------------------------------------------------------------------------------------------- limits

/**
 * The byte cap and the deadline of one download, and the translation of whatever the source throws into a
 * RuntimeError saying which limit (or which I/O error) ended it.
 */
class Budget {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout | undefined;
  private abortedBy: "timeout" | "caller" | undefined;
  private readonly maxBytes: number;
  private readonly timeoutMs: number;
  private readonly onCallerAbort = (): void => {
    this.abortedBy ??= "caller";
    this.controller.abort();
  };

  constructor(
    readonly uri: string,
    private readonly opts: FetchOptions,
  ) {
    this.maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
    if (opts.signal?.aborted) this.onCallerAbort();
    else opts.signal?.addEventListener("abort", this.onCallerAbort, { once: true });
    this.timer = setTimeout(() => {
      this.abortedBy ??= "timeout";
      this.controller.abort();
    }, this.timeoutMs);
    this.timer.unref(); // a pending download alone must not keep the process alive
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  exceeds(bytes: number): boolean {
    return bytes > this.maxBytes;
  }

  checkDeclared(bytes: number): void {
    if (this.exceeds(bytes)) {
      throw new RuntimeError("FETCH_FAILED", `too large: ${this.uri} is ${bytes} bytes, the limit is ${this.maxBytes}`);
    }
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.opts.signal?.removeEventListener("abort", this.onCallerAbort);
  }

  /** Turns anything thrown while fetching into FETCH_FAILED / CANCELLED, naming the limit that stopped it. */
  toError(e: unknown, doing: string): RuntimeError {
    if (this.abortedBy === "caller") return new RuntimeError("CANCELLED", `fetch of ${this.uri} cancelled`, { cause: e });
    if (this.abortedBy === "timeout") {
      return new RuntimeError("FETCH_FAILED", `timed out after ${this.timeoutMs} ms fetching ${this.uri}`, { cause: e });
    }
    if (e instanceof RuntimeError) return e;
    // undici reports "fetch failed" and keeps the useful part (ECONNREFUSED, ENOTFOUND, …) in `cause`
    const err = e as Error & { code?: string; cause?: Error & { code?: string } };
    const detail = err.cause?.code ?? err.cause?.message ?? err.code ?? err.message ?? String(e);
    return new RuntimeError("FETCH_FAILED", `${doing} ${this.uri}: ${detail}`, { cause: e });
  }

  /** The body as a counted, deadline-bound iterable that releases the timer when it ends, however it ends. */
  wrap(source: AsyncIterable<Uint8Array>, declaredSize: number | undefined, release: () => Promise<void>): ArtifactStream {
    const budget = this;
    async function* counted(): AsyncGenerator<Uint8Array> {
      let total = 0;
      try {
        for await (const chunk of source) {
          total += chunk.byteLength;
          if (budget.exceeds(total)) {
            throw new RuntimeError("FETCH_FAILED", `too large: ${budget.uri} is over ${budget.maxBytes} bytes`);
          }
          yield chunk;
        }
      } catch (e) {
        throw budget.toError(e, "cannot read");
      } finally {
        budget.dispose();
      }
    }
    const chunks = counted();
    return {
      chunks,
      declaredSize,
      cancel: async () => {
        await chunks.return(undefined); // runs the generator's cleanup when it was mid-way
        budget.dispose(); // and this when it never started
        await release();
      },
    };
  }
}
