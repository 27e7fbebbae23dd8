/**
 * Results by digest (ResultStore + GET /results) and GET /tasks/:id over real HTTP: a result is stored only when its
 * files (or its callback bytes) hash to the digest, it is served as JSON with its parsed result.json and file by file
 * as raw bytes; malformed digests and paths are 400s, unknown ones 404s.
 */
import { expect } from "chai";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { AbiCoder, ZeroHash, keccak256 } from "ethers";
import { EMPTY_DIRECTORY_DIGEST, directoryDigest, filesDigest } from "../../../sdk/encoding";
import { resultsRouter } from "../../../scheduler/api/results";
import { ResultStore, ResultStoreError, decodeResultFiles } from "../../../scheduler/api/result-store";
import type { ResultFileInput, StoredResult } from "../../../scheduler/api/result-store";
import { tasksRouter } from "../../../scheduler/api/tasks";
import type { TaskView } from "../../../scheduler/api/tasks";
import { Served, get, serve } from "./helpers";

const bytes = (text: string) => new TextEncoder().encode(text);

/** The digest a worker would compute for these files (written to a scratch /out). */
async function digestOf(files: ResultFileInput[]): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), "concord-out-"));
  try {
    for (const f of files) {
      mkdirSync(dirname(join(out, f.path)), { recursive: true });
      writeFileSync(join(out, f.path), f.content);
    }
    return await directoryDigest(out);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

async function expectStoreError(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(ResultStoreError);
    expect((error as ResultStoreError).code).to.equal(code);
    if (message) expect((error as Error).message).to.match(message);
    return;
  }
  expect.fail(`expected ResultStoreError ${code}`);
}

/** Counts the manifest reads: a put reads the manifest once per write it makes (is the digest stored already?). */
class CountingStore extends ResultStore {
  gets = 0;
  override async get(digest: string): Promise<StoredResult | null> {
    this.gets++;
    return super.get(digest);
  }
}

const RESULT: ResultFileInput[] = [
  // Not canonical on purpose: the digest is over canonical JSON, the file is kept as sent.
  { path: "result.json", content: bytes('{ "rows": [[12345678901234567890, "a"]], "columns": ["n", "s"] }') },
  { path: "logs/summary.txt", content: bytes("3 rows\n") },
];

describe("scheduler API: results by digest and tasks", function () {
  let dir: string;
  let store: ResultStore;
  let server: Served;
  const tasks = new Map<string, TaskView>();

  beforeEach(async function () {
    dir = mkdtempSync(join(tmpdir(), "concord-results-"));
    store = new ResultStore({ dir });
    tasks.clear();
    server = await serve([resultsRouter({ store }), tasksRouter({ getTask: (id) => tasks.get(id) ?? null })]);
  });

  afterEach(async function () {
    expect((await get(`${server.url}/results/${ZeroHash}`)).status).to.equal(404); // still serving
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("stores a result whose files digest to the digest, and serves it: JSON with the files and the parsed result.json", async function () {
    const digest = await digestOf(RESULT);
    const stored = await store.put(digest, RESULT);
    expect(stored.kind).to.equal("directory");
    expect(stored.files).to.deep.equal([
      { path: "logs/summary.txt", size: 7 },
      { path: "result.json", size: RESULT[0].content.byteLength },
    ]);

    const r = await get(`${server.url}/results/${digest.toUpperCase().replace("0X", "0x")}`);
    expect(r.status).to.equal(200);
    expect(r.json.digest).to.equal(digest);
    expect(r.json.files).to.deep.equal(stored.files);
    expect(r.json.result.columns).to.deep.equal(["n", "s"]);
    // The big integer reaches the client exactly (the body is canonical JSON text, not a double).
    expect(r.text).to.contain('"result":{"columns":["n","s"],"rows":[[12345678901234567890,"a"]]}');
  });

  it("serves each file's raw bytes, nested paths included; 404 for an unknown file, 400 for a path escaping the result", async function () {
    const digest = await digestOf(RESULT);
    await store.put(digest, RESULT);
    const file = await get(`${server.url}/results/${digest}/files/logs/summary.txt`);
    expect(file.status).to.equal(200);
    expect(file.text).to.equal("3 rows\n");
    expect(file.contentType).to.match(/^text\/plain/);
    const json = await get(`${server.url}/results/${digest}/files/result.json`);
    expect(json.text).to.equal(new TextDecoder().decode(RESULT[0].content));

    const missing = await get(`${server.url}/results/${digest}/files/nope.txt`);
    expect(missing.status).to.equal(404);
    expect(missing.json.error.code).to.equal("FILE_NOT_FOUND");
    const escaping = await get(`${server.url}/results/${digest}/files/a%2F..%2F..%2Fsecret`);
    expect(escaping.status).to.equal(400);
    expect(escaping.json.error.code).to.equal("INVALID_PATH");
  });

  it("refuses a put whose files do not digest to the digest, and stores nothing", async function () {
    const digest = await digestOf(RESULT);
    const tampered = [{ ...RESULT[0], content: bytes('{"rows":[[1,"a"]],"columns":["n","s"]}') }, RESULT[1]];
    await expectStoreError(store.put(digest, tampered), "DIGEST_MISMATCH", new RegExp(`the files digest to 0x[0-9a-f]{64}, not ${digest}`));
    expect(await store.has(digest)).to.equal(false);
    expect(readdirSync(dir)).to.deep.equal([]); // no temporary left behind
    expect((await get(`${server.url}/results/${digest}`)).status).to.equal(404);
  });

  it("stores a callback result under keccak256 of the callback bytes (kept as callback-data), refuses any other digest", async function () {
    const callbackData = AbiCoder.defaultAbiCoder().encode(["uint256"], [42]);
    const digest = keccak256(callbackData);
    await expectStoreError(store.put(EMPTY_DIRECTORY_DIGEST, [], { callbackData }), "DIGEST_MISMATCH", /keccak256 of the callback data/);
    await expectStoreError(
      store.put(digest, [{ path: "callback-data", content: bytes("other") }], { callbackData }),
      "DIGEST_MISMATCH",
      /differs from the callback data/,
    );
    const stored = await store.put(digest, [{ path: "result.json", content: bytes('{"answer":42}') }], { callbackData });
    expect(stored.kind).to.equal("callback");
    const raw = await fetch(`${server.url}/results/${digest}/files/callback-data`);
    expect(raw.headers.get("content-type")).to.equal("application/octet-stream");
    expect(Buffer.from(await raw.arrayBuffer()).toString("hex")).to.equal(callbackData.slice(2));
    expect((await get(`${server.url}/results/${digest}`)).json.result).to.deep.equal({ answer: 42 });
  });

  it("refuses unsafe or ambiguous paths, too many files, too many bytes", async function () {
    const one = (path: string) => [{ path, content: bytes("x") }];
    for (const path of ["../x", "/etc/passwd", "a//b", "a/./b", "a\\b", "", "a\0b", "e\u0301.txt"]) {
      await expectStoreError(store.put(ZeroHash, one(path)), "INVALID_PATH");
    }
    await expectStoreError(store.put(ZeroHash, [...one("a"), ...one("a")]), "DUPLICATE_PATH");
    await expectStoreError(store.put(ZeroHash, [...one("a"), ...one("a/b")]), "INVALID_PATH", /both a file and a directory/);
    const small = new ResultStore({ dir, maxFiles: 2, maxBytes: 4 });
    await expectStoreError(small.put(ZeroHash, [...one("a"), ...one("b"), ...one("c")]), "TOO_MANY_FILES");
    await expectStoreError(small.put(ZeroHash, [{ path: "a", content: bytes("12345") }]), "TOO_LARGE");
    await expectStoreError(store.put("0x1234", one("a")), "INVALID_DIGEST");
  });

  it("a second put of the same digest is a no-op; an empty output is a valid result", async function () {
    const first = await store.put(EMPTY_DIRECTORY_DIGEST, []);
    const second = await store.put(EMPTY_DIRECTORY_DIGEST, []);
    expect(second).to.deep.equal(first);
    const r = await get(`${server.url}/results/${EMPTY_DIRECTORY_DIGEST}`);
    expect(r.json).to.deep.include({ digest: EMPTY_DIRECTORY_DIGEST, files: [], result: null });
  });

  it("overlapping puts of one digest (a trust-3 task's reveals) share one write: equal manifests, one directory, no temporary left", async function () {
    const digest = await digestOf(RESULT);
    // The same result written canonically by another worker: same digest, other bytes.
    const canonical = [{ path: "result.json", content: bytes('{"columns":["n","s"],"rows":[[12345678901234567890,"a"]]}') }, RESULT[1]];
    const counting = new CountingStore({ dir });
    const [a, b, c] = await Promise.all([counting.put(digest, RESULT), counting.put(digest, [...RESULT].reverse()), counting.put(digest, canonical)]);
    expect(b).to.deep.equal(a);
    expect(c).to.deep.equal(a);
    expect(counting.gets).to.equal(1); // one write, the other two awaited it
    expect(readdirSync(dir)).to.deep.equal([digest]);
    expect(readdirSync(join(dir, digest)).sort()).to.deep.equal(["files", "manifest.json"]);
    expect(await store.get(digest)).to.deep.equal(a);
    expect(readFileSync(join(dir, digest, "files", "result.json"))).to.deep.equal(Buffer.from(RESULT[0].content)); // the first put's bytes
    expect(await counting.put(digest, canonical)).to.deep.equal(a); // stored: a no-op
  });

  it("checks each put's own files before anything is written: a mismatch is refused while a good put of the digest is in flight, and once stored", async function () {
    const digest = await digestOf(RESULT);
    const tampered = [{ ...RESULT[0], content: bytes('{"rows":[[1,"a"]],"columns":["n","s"]}') }, RESULT[1]];
    const fresh = new ResultStore({ dir: join(dir, "store") });
    await expectStoreError(fresh.put(digest, tampered), "DIGEST_MISMATCH", new RegExp(`the files digest to 0x[0-9a-f]{64}, not ${digest}`));
    expect(existsSync(fresh.options.dir)).to.equal(false); // not even the store's directory

    let settled = false;
    const good = fresh.put(digest, RESULT).finally(() => (settled = true));
    await expectStoreError(fresh.put(digest, tampered), "DIGEST_MISMATCH");
    await expectStoreError(fresh.put(digest, [{ path: "../x", content: bytes("x") }]), "INVALID_PATH");
    expect(settled).to.equal(false); // refused on their own, not by joining the good put
    const stored = await good;
    expect(readdirSync(fresh.options.dir)).to.deep.equal([digest]); // no .incoming-* left
    expect(readFileSync(join(fresh.options.dir, digest, "files", "result.json"))).to.deep.equal(Buffer.from(RESULT[0].content));

    await expectStoreError(fresh.put(digest, tampered), "DIGEST_MISMATCH");
    expect(await fresh.put(digest, RESULT)).to.deep.equal(stored);

    // The same for a callback deal: its own callback bytes are checked, whatever is in flight.
    const callbackData = AbiCoder.defaultAbiCoder().encode(["uint256"], [7]);
    const callbackDigest = keccak256(callbackData);
    const inFlight = fresh.put(callbackDigest, [], { callbackData });
    await expectStoreError(fresh.put(callbackDigest, [{ path: "callback-data", content: bytes("other") }], { callbackData }), "DIGEST_MISMATCH", /differs/);
    await expectStoreError(fresh.put(callbackDigest, [], { callbackData: "0x01" }), "DIGEST_MISMATCH", /keccak256 of the callback data/);
    expect((await inFlight).kind).to.equal("callback");
    expect(readdirSync(fresh.options.dir).sort()).to.deep.equal([digest, callbackDigest].sort());
  });

  it("a put whose shared write failed makes its own write and stores the result", async function () {
    const digest = await digestOf(RESULT);
    // A directory without a manifest where the result goes (say, made by hand): the first write's rename fails.
    mkdirSync(join(dir, digest, "files"), { recursive: true });
    const first = store.put(digest, RESULT);
    const twin = store.put(digest, RESULT); // joins the first put's write
    // Removed as the first put fails, in the same tick: the twin's own write reaches its rename several I/O later.
    const failure = first.then(
      () => expect.fail("the first put should fail"),
      (error: NodeJS.ErrnoException) => {
        rmSync(join(dir, digest), { recursive: true });
        return error;
      },
    );
    expect((await failure).code).to.be.oneOf(["ENOTEMPTY", "EEXIST"]);
    const stored = await twin;
    expect(stored).to.deep.include({ digest, kind: "directory" });
    expect(await store.get(digest)).to.deep.equal(stored);
    expect(readdirSync(dir)).to.deep.equal([digest]); // neither write left its temporary
    expect(await store.put(digest, RESULT)).to.deep.equal(stored);
  });

  it("the digest checked in memory is the directoryDigest of the stored files, for nested results", async function () {
    const trees: ResultFileInput[][] = [
      [...RESULT, { path: "logs/deep/er/x.bin", content: new Uint8Array([0, 255, 10, 13]) }, { path: "empty.txt", content: new Uint8Array() }],
      // "a.txt" and the directory "a" sort differently by name ("." < "/") and by path; "é" precomposed (NFC).
      [{ path: "a.txt", content: bytes("1") }, { path: "a/b.json", content: bytes(' {"b": [1, 2.50e1]} ') }, { path: "\u00e9/result.json", content: bytes("[]") }],
      // U+FF61 sorts after U+1F600 by UTF-16 code units, before it by UTF-8 bytes (the order the digest uses).
      [{ path: "\uff61.txt", content: bytes("x") }, { path: "\u{1f600}.txt", content: bytes("y") }, { path: "z/\u{1f600}/result.json", content: bytes("{}") }],
      [{ path: "result.json", content: bytes("not json") }, { path: "r/e/s/u/l/t/s.json", content: bytes('{"k": 12345678901234567890}') }],
    ];
    for (const files of trees) {
      const digest = await digestOf(files);
      expect(filesDigest(files.map((f) => ({ path: f.path, bytes: f.content })))).to.equal(digest);
      await store.put(digest, files);
      expect(await directoryDigest(join(dir, digest, "files"))).to.equal(digest);
      const changed = files.map((f, i) => (i === files.length - 1 ? { ...f, content: bytes("changed") } : f));
      await expectStoreError(store.put(digest, changed), "DIGEST_MISMATCH");
    }
    expect(readdirSync(dir)).to.have.length(trees.length);
  });

  it("decodes the session's base64 files", async function () {
    const files = decodeResultFiles([{ path: "result.json", base64: Buffer.from('{"a":1}').toString("base64") }]);
    const digest = await digestOf(files);
    expect((await store.put(digest, files)).files).to.deep.equal([{ path: "result.json", size: 7 }]);
  });

  it("answers 400 for a malformed digest and 404 for an unknown one", async function () {
    const bad = await get(`${server.url}/results/0xnothex`);
    expect(bad.status).to.equal(400);
    expect(bad.json.error).to.deep.equal({ code: "INVALID_DIGEST", message: 'expected a result digest (0x + 64 hex), got "0xnothex"' });
    const unknown = await get(`${server.url}/results/${keccak256("0x01")}`);
    expect(unknown.status).to.equal(404);
    expect(unknown.json.error.code).to.equal("RESULT_NOT_FOUND");
  });

  it("GET /tasks/:id shows the task, its replicas and timeline (bigints as strings); 404 unknown, 400 malformed", async function () {
    const id = keccak256("0x02");
    tasks.set(id, { task: { id, index: 3n, status: "REVEALING" }, replicas: [{ worker: "0xabc", state: "committed" }], timeline: [{ at: 0, what: "offer" }] });
    const r = await get(`${server.url}/tasks/${id.toUpperCase().replace("0X", "0x")}`);
    expect(r.status).to.equal(200);
    expect(r.json.task).to.deep.equal({ id, index: "3", status: "REVEALING" });
    expect(r.json.replicas).to.have.length(1);
    const unknown = await get(`${server.url}/tasks/${ZeroHash}`);
    expect(unknown.status).to.equal(404);
    expect(unknown.json.error.code).to.equal("TASK_NOT_FOUND");
    const bad = await get(`${server.url}/tasks/42`);
    expect(bad.status).to.equal(400);
    expect(bad.json.error.code).to.equal("INVALID_TASK_ID");
  });
});
