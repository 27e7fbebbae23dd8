/**
 * worker/runtime/fetch.ts and cache.ts: apps and datasets fetched by URI (file://, absolute paths, http(s) on a real
 * loopback server), verified against their sha256 checksum, stored content-addressed on disk, shared between
 * concurrent callers, evicted least-recently-used, and found again after a restart.
 */
import { expect } from "chai";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ArtifactCache, PARTIAL_PREFIX, normalizeChecksum } from "../../../worker/runtime/cache";
import { MAX_REDIRECTS, describeUri, openArtifactStream } from "../../../worker/runtime/fetch";
import { RuntimeError, type RuntimeErrorCode } from "../../../worker/runtime/errors";

// ---------------------------------------------------------------------------------------------------------- helpers

const sha256 = (bytes: Uint8Array | string) => "0x" + createHash("sha256").update(bytes).digest("hex");
const bytesOf = (n: number, fill: string) => Buffer.alloc(n, fill);

/** Resolves to the RuntimeError `promise` rejected with, after checking its code (and message, when given). */
async function refused(promise: Promise<unknown>, code: RuntimeErrorCode, message?: RegExp): Promise<RuntimeError> {
  try {
    await promise;
  } catch (e) {
    expect(e, String(e)).to.be.instanceOf(RuntimeError);
    const err = e as RuntimeError;
    expect(err.code, err.message).to.equal(code);
    if (message) expect(err.message).to.match(message);
    return err;
  }
  expect.fail(`expected ${code}, but it succeeded`);
}

type Route = (req: IncomingMessage, res: ServerResponse) => void;

/** A real HTTP server on 127.0.0.1 (random port) that counts requests per path. */
class TestServer {
  readonly hits = new Map<string, number>();
  private readonly routes = new Map<string, Route>();
  private readonly server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      const path = req.url ?? "/";
      this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
      const route = this.routes.get(path.split("?")[0]);
      if (route) route(req, res);
      else res.writeHead(404).end("not found");
    });
  }

  async start(): Promise<this> {
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    return this;
  }

  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  route(path: string, handler: Route): string {
    this.routes.set(path, handler);
    return this.url(path);
  }

  /** Serves `body`, with a Content-Length header unless `chunked`. */
  serve(path: string, body: Buffer, opts: { chunked?: boolean } = {}): string {
    return this.route(path, (_req, res) => {
      if (opts.chunked) {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        for (let i = 0; i < body.length; i += 1000) res.write(body.subarray(i, i + 1000));
        res.end();
      } else {
        res.writeHead(200, { "content-length": body.length }).end(body);
      }
    });
  }

  count(path: string): number {
    return this.hits.get(path) ?? 0;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, "close");
  }
}

/** Files in the cache's content-addressed directory. */
async function stored(dir: string): Promise<string[]> {
  return (await readdir(join(dir, "sha256"))).sort();
}

// ------------------------------------------------------------------------------------------------------------ tests

describe("worker/runtime fetch + ArtifactCache", function () {
  let tmp: string;
  let srcDir: string;
  let cacheDir: string;
  let server: TestServer;

  beforeEach(async function () {
    tmp = await mkdtemp(join(tmpdir(), "concord-cache-"));
    srcDir = join(tmp, "src dir"); // a space, to exercise percent-decoding of file:// URIs
    cacheDir = join(tmp, "cache");
    await mkdir(srcDir);
    server = await new TestServer().start();
  });

  afterEach(async function () {
    await server.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  async function sourceFile(name: string, content: Buffer | string): Promise<{ path: string; checksum: string }> {
    const path = join(srcDir, name);
    await writeFile(path, content);
    return { path, checksum: sha256(content) };
  }

  describe("local files", function () {
    it("fetches a file:// URI on a miss, stores it read-only under its hash, and serves it from disk on a hit", async function () {
      const { path, checksum } = await sourceFile("app.wasm", "hello wasm");
      const uri = pathToFileURL(path).href;
      expect(uri).to.contain("src%20dir");
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      expect(cache.has(checksum)).to.equal(false);

      const local = await cache.get(uri, checksum);
      expect(local).to.equal(join(cacheDir, "sha256", checksum.slice(2)));
      expect(await readFile(local, "utf8")).to.equal("hello wasm");
      expect((await stat(local)).mode & 0o777).to.equal(0o444);
      expect(cache.has(checksum)).to.equal(true);
      expect(cache.size()).to.equal(10);

      await rm(path); // the source is gone: a hit must not need it
      expect(await cache.get(uri, checksum)).to.equal(local);
    });

    it("accepts a plain absolute path, taken literally", async function () {
      const { path, checksum } = await sourceFile("data.csv", "a,b\n1,2\n");
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      expect(await readFile(await cache.get(path, checksum), "utf8")).to.equal("a,b\n1,2\n");
    });

    it("refuses a missing file and a directory", async function () {
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      await refused(cache.get(join(srcDir, "nope"), sha256("x")), "FETCH_FAILED", /ENOENT/);
      await refused(cache.get(srcDir, sha256("x")), "FETCH_FAILED", /not a regular file/);
      expect(await stored(cacheDir)).to.deep.equal([]);
    });

    it("refuses a file larger than the cap before reading it", async function () {
      const { path, checksum } = await sourceFile("big.bin", bytesOf(5000, "b"));
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      await refused(cache.get(path, checksum, { maxBytes: 4999 }), "FETCH_FAILED", /too large/);
      expect(cache.has(checksum)).to.equal(false);
      expect(await stored(cacheDir)).to.deep.equal([]);
    });
  });

  describe("checksums", function () {
    it("refuses a checksum mismatch, naming the URI and both checksums, and caches nothing", async function () {
      const { path } = await sourceFile("app.wasm", "the real bytes");
      const expected = sha256("other bytes");
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      const err = await refused(cache.get(pathToFileURL(path).href, expected), "CHECKSUM_MISMATCH");
      expect(err.message).to.contain("app.wasm").and.contain(expected).and.contain(sha256("the real bytes"));
      expect(cache.has(expected)).to.equal(false);
      expect(cache.size()).to.equal(0);
      expect(await stored(cacheDir)).to.deep.equal([]); // no partial file left behind either
    });

    it("refuses a mismatch over http too, leaving nothing behind", async function () {
      const uri = server.serve("/app.wasm", Buffer.from("served bytes"));
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      await refused(cache.get(uri, sha256("registered bytes")), "CHECKSUM_MISMATCH", /app\.wasm/);
      expect(await stored(cacheDir)).to.deep.equal([]);
    });

    it("accepts 0x-prefixed (either case) and bare hex, upper or lower case", async function () {
      const { path, checksum } = await sourceFile("a", "abc");
      const bare = checksum.slice(2);
      expect(normalizeChecksum(checksum)).to.equal(bare);
      expect(normalizeChecksum("0X" + bare.toUpperCase())).to.equal(bare);
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      const local = await cache.get(path, bare.toUpperCase());
      expect(await cache.get(path, checksum)).to.equal(local);
      expect(cache.has("0X" + bare)).to.equal(true);
    });

    for (const [label, bad] of [
      ["empty", ""],
      ["0x only", "0x"],
      ["too short", "0x1234"],
      ["too long", "0x" + "a".repeat(65)],
      ["not hex", "0x" + "g".repeat(64)],
      ["spaces", " 0x" + "a".repeat(64)],
      ["zero (nothing registered)", "0x" + "0".repeat(64)],
    ]) {
      it(`refuses a bad checksum string: ${label}`, async function () {
        const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
        await refused(cache.get("/some/file", bad), "FETCH_FAILED", /invalid checksum/);
        expect(() => cache.has(bad)).to.throw(RuntimeError, /invalid checksum/);
        expect(server.hits.size).to.equal(0);
      });
    }
  });

  describe("URI schemes", function () {
    for (const uri of ["ftp://example.org/app.wasm", "data:,hello", "ipfs://bafy/app.wasm", "apps/app.wasm", "./x", ""]) {
      it(`refuses ${JSON.stringify(uri)} with the supported forms`, async function () {
        const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
        const err = await refused(cache.get(uri, sha256("x")), "FETCH_FAILED");
        expect(err.message).to.match(uri === "" ? /empty URI/ : /unsupported URI scheme/);
        expect(err.message).to.contain("file://").and.contain("https://");
      });
    }

    it("refuses a file:// URI naming a remote host", async function () {
      await refused(openArtifactStream("file://elsewhere.example/etc/passwd"), "FETCH_FAILED", /invalid file URI/);
    });

    it("hides credentials and query strings of URLs in messages", async function () {
      expect(describeUri("https://alice:s3cret@host.example/a.wasm?X-Amz-Signature=abc")).to.equal(
        "https://***@host.example/a.wasm?…",
      );
      const err = await refused(
        openArtifactStream(server.url("/missing?token=s3cret")),
        "FETCH_FAILED",
        /HTTP 404/,
      );
      expect(err.message).not.to.contain("s3cret");
    });
  });

  describe("http", function () {
    it("downloads on a miss and serves later gets from disk without a request", async function () {
      const body = bytesOf(10_000, "h");
      const uri = server.serve("/data.bin", body);
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      const local = await cache.get(uri, sha256(body));
      expect(await readFile(local)).to.deep.equal(body);
      expect(await cache.get(uri, sha256(body))).to.equal(local);
      expect(server.count("/data.bin")).to.equal(1);
    });

    for (const status of [404, 500]) {
      it(`refuses HTTP ${status} with the status in the message`, async function () {
        const uri = server.route("/broken", (_req, res) => res.writeHead(status).end("nope"));
        const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
        await refused(cache.get(uri, sha256("x")), "FETCH_FAILED", new RegExp(`HTTP ${status}`));
        expect(await stored(cacheDir)).to.deep.equal([]);
      });
    }

    it("follows redirects (relative and absolute)", async function () {
      const body = Buffer.from("moved content");
      server.serve("/final", body);
      server.route("/hop2", (_req, res) => res.writeHead(307, { location: server.url("/final") }).end());
      const uri = server.route("/hop1", (_req, res) => res.writeHead(302, { location: "/hop2" }).end());
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      expect(await readFile(await cache.get(uri, sha256(body)), "utf8")).to.equal("moved content");
      expect([server.count("/hop1"), server.count("/hop2"), server.count("/final")]).to.deep.equal([1, 1, 1]);
    });

    it(`gives up after ${MAX_REDIRECTS} redirects`, async function () {
      const uri = server.route("/loop", (_req, res) => res.writeHead(301, { location: "/loop" }).end());
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      await refused(cache.get(uri, sha256("x")), "FETCH_FAILED", /redirects/);
      expect(server.count("/loop")).to.equal(MAX_REDIRECTS + 1);
    });

    it("refuses a redirect to another scheme", async function () {
      const uri = server.route("/sneaky", (_req, res) => res.writeHead(302, { location: "file:///etc/passwd" }).end());
      await refused(openArtifactStream(uri), "FETCH_FAILED", /unsupported scheme file:/);
    });

    it("stops a server that never answers with the timeout", async function () {
      const uri = server.route("/hang", () => undefined);
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      await refused(cache.get(uri, sha256("x"), { timeoutMs: 200 }), "FETCH_FAILED", /timed out after 200 ms/);
      expect(await stored(cacheDir)).to.deep.equal([]);
    });

    it("stops a body that stalls half-way with the timeout, and removes the partial file", async function () {
      const uri = server.route("/stall", (_req, res) => {
        res.writeHead(200, { "content-length": 1000 });
        res.write(bytesOf(500, "s"));
      });
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      await refused(cache.get(uri, sha256("x"), { timeoutMs: 300 }), "FETCH_FAILED", /timed out/);
      expect(await stored(cacheDir)).to.deep.equal([]);
    });

    it("refuses a Content-Length above the cap before reading the body", async function () {
      const body = bytesOf(50_000, "L");
      const uri = server.serve("/large", body);
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      await refused(cache.get(uri, sha256(body), { maxBytes: 10_000 }), "FETCH_FAILED", /too large.*50000 bytes/);
      expect(await stored(cacheDir)).to.deep.equal([]);
    });

    it("refuses a body without Content-Length once it passes the cap", async function () {
      const body = bytesOf(50_000, "C");
      const uri = server.serve("/chunked", body, { chunked: true });
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      await refused(cache.get(uri, sha256(body), { maxBytes: 10_000 }), "FETCH_FAILED", /too large.*over 10000 bytes/);
      expect(await stored(cacheDir)).to.deep.equal([]);
    });

    it("uses the cache's maxBytes as the default cap of one artifact", async function () {
      const body = bytesOf(3000, "d");
      const uri = server.serve("/d", body, { chunked: true });
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 2000 });
      await refused(cache.get(uri, sha256(body)), "FETCH_FAILED", /too large/);
    });

    it("reports an unreachable host as FETCH_FAILED", async function () {
      const uri = server.url("/gone");
      await server.stop();
      server = await new TestServer().start(); // afterEach stops this one
      await refused(openArtifactStream(uri, { timeoutMs: 5000 }), "FETCH_FAILED", /ECONNREFUSED|gone/);
    });
  });

  describe("concurrency and cancellation", function () {
    it("shares one download between concurrent gets of the same checksum", async function () {
      const body = bytesOf(200_000, "c");
      const uri = server.serve("/shared", body, { chunked: true });
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      const paths = await Promise.all(Array.from({ length: 5 }, () => cache.get(uri, sha256(body))));
      expect(new Set(paths).size).to.equal(1);
      expect(server.count("/shared")).to.equal(1);
      expect(await readFile(paths[0])).to.deep.equal(body);
    });

    it("lets a joiner with another URI fetch from its own URI when the shared download fails", async function () {
      const body = Buffer.from("same artifact, two mirrors");
      const broken = server.route("/mirror-a", (_req, res) => res.writeHead(503).end());
      const good = server.serve("/mirror-b", body);
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      const [a, b] = await Promise.allSettled([cache.get(broken, sha256(body)), cache.get(good, sha256(body))]);
      expect(a.status).to.equal("rejected");
      expect(b.status).to.equal("fulfilled");
      expect(cache.has(sha256(body))).to.equal(true);
    });

    it("cancels a download when its only caller aborts", async function () {
      const uri = server.route("/slow", (_req, res) => {
        res.writeHead(200);
        res.write("partial");
      });
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      const controller = new AbortController();
      const pending = cache.get(uri, sha256("x"), { signal: controller.signal, timeoutMs: 30_000 });
      setTimeout(() => controller.abort(), 100);
      await refused(pending, "CANCELLED");
    });

    it("keeps a shared download going when one of two callers aborts", async function () {
      const body = Buffer.from("wanted by two");
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const uri = server.route("/gated", (_req, res) => {
        res.writeHead(200, { "content-length": body.length });
        void gate.then(() => res.end(body));
      });
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      const controller = new AbortController();
      const first = cache.get(uri, sha256(body), { signal: controller.signal });
      const second = cache.get(uri, sha256(body));
      controller.abort();
      await refused(first, "CANCELLED");
      release();
      expect(await readFile(await second, "utf8")).to.equal("wanted by two");
      expect(server.count("/gated")).to.equal(1);
    });
  });

  describe("eviction", function () {
    async function three(): Promise<Array<{ path: string; checksum: string }>> {
      return Promise.all(["a", "b", "c"].map((x) => sourceFile(x, bytesOf(100, x))));
    }

    it("evicts the least recently used entries once the total passes maxBytes, keeping the most recent", async function () {
      const [a, b, c] = await three();
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 250 });
      await cache.get(a.path, a.checksum);
      await cache.get(b.path, b.checksum);
      await cache.get(a.path, a.checksum); // a is now more recent than b
      await cache.get(c.path, c.checksum);
      expect([cache.has(a.checksum), cache.has(b.checksum), cache.has(c.checksum)]).to.deep.equal([true, false, true]);
      expect(cache.size()).to.equal(200);
      expect(await stored(cacheDir)).to.deep.equal([a.checksum.slice(2), c.checksum.slice(2)].sort());
    });

    it("never evicts a leased entry; evictToFit frees it after release", async function () {
      const [a, b] = await three();
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 150 });
      const lease = await cache.acquire(a.path, a.checksum);
      await cache.get(b.path, b.checksum);
      expect(cache.has(a.checksum)).to.equal(true); // in use: kept although the total is over the cap
      expect(cache.size()).to.equal(200);
      expect(await readFile(lease.path)).to.deep.equal(bytesOf(100, "a"));
      lease.release();
      lease.release(); // idempotent
      expect(await cache.evictToFit()).to.equal(100);
      expect([cache.has(a.checksum), cache.has(b.checksum)]).to.deep.equal([false, true]);
    });

    it("keeps the artifact just returned even when it alone exceeds the cap", async function () {
      const [a] = await three();
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 50 });
      const local = await cache.get(a.path, a.checksum, { maxBytes: 1000 });
      expect(await cache.evictToFit()).to.equal(0);
      expect(await readFile(local)).to.deep.equal(bytesOf(100, "a"));
    });

    it("evict removes one entry and its file", async function () {
      const [a] = await three();
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1000 });
      const local = await cache.get(a.path, a.checksum);
      expect(await cache.evict(a.checksum)).to.equal(true);
      expect(await cache.evict(a.checksum)).to.equal(false);
      expect(cache.size()).to.equal(0);
      expect(await stat(local).catch((e: NodeJS.ErrnoException) => e.code)).to.equal("ENOENT");
      expect(await stored(cacheDir)).to.deep.equal([]);
    });
  });

  describe("restart", function () {
    it("finds the entries of a previous run, removes leftover partial files and untrusted files", async function () {
      const body = Buffer.from("survives restarts");
      const uri = server.serve("/keep", body);
      const first = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      const local = await first.get(uri, sha256(body));

      const leftover = join(cacheDir, "sha256", `${PARTIAL_PREFIX}${"1".repeat(64)}-crash`);
      await writeFile(leftover, "half a download");
      const writable = join(cacheDir, "sha256", "2".repeat(64)); // not written by the cache: read-write
      await writeFile(writable, "who put this here?");
      await chmod(writable, 0o644);

      const second = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      expect(second.has(sha256(body))).to.equal(true);
      expect(second.size()).to.equal(body.length);
      expect(await stored(cacheDir)).to.deep.equal([sha256(body).slice(2)]);
      expect(await second.get(uri, sha256(body))).to.equal(local);
      expect(server.count("/keep")).to.equal(1); // served from disk, no new request
    });

    it("keeps the LRU order across a restart and shrinks to a smaller maxBytes", async function () {
      const files = await Promise.all(["a", "b", "c"].map((x) => sourceFile(x, bytesOf(100, x))));
      const first = new ArtifactCache({ dir: cacheDir, maxBytes: 1000 });
      for (const f of files) await first.get(f.path, f.checksum);
      // make a the most recently used, on disk too (mtime), with distinct times whatever the clock resolution
      for (const [i, f] of [files[1], files[2], files[0]].entries()) {
        await utimes(first.pathOf(f.checksum), 1_700_000_000 + i, 1_700_000_000 + i);
      }
      const second = new ArtifactCache({ dir: cacheDir, maxBytes: 150 });
      expect(second.list().map((e) => e.checksum)).to.deep.equal([files[0].checksum]);
      expect(second.size()).to.equal(100);
    });

    it("treats a file deleted behind its back as a miss and fetches it again", async function () {
      const body = Buffer.from("fetch me twice");
      const uri = server.serve("/twice", body);
      const cache = new ArtifactCache({ dir: cacheDir, maxBytes: 1 << 20 });
      const local = await cache.get(uri, sha256(body));
      await rm(local, { force: true });
      expect(await cache.get(uri, sha256(body))).to.equal(local);
      expect(server.count("/twice")).to.equal(2);
    });
  });

  describe("configuration", function () {
    it("refuses a bad maxBytes", function () {
      expect(() => new ArtifactCache({ dir: cacheDir, maxBytes: -1 })).to.throw(RangeError, /maxBytes/);
      expect(() => new ArtifactCache({ dir: cacheDir, maxBytes: Number.NaN })).to.throw(RangeError, /maxBytes/);
    });
  });
});
