import { expect } from "chai";
import { mkdtemp, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EMPTY_DIRECTORY_DIGEST } from "../../../sdk/encoding";
import { Runtime, type RuntimeErrorCode } from "../../../worker/runtime";
import { capMemory } from "../../../worker/runtime/wasi/module";
import { OP, tinyModule } from "../../helpers/wasm";
import { runtimeFailure } from "../../helpers/runtime";

const SEED = "0x" + "11".repeat(32);
const MiB = 1024 * 1024;
const wasi = (name: string) => ({ module: "wasi_snapshot_preview1", name });

const noop = tinyModule({ memory: { min: 1 }, body: [] });
const exit3 = tinyModule({ imports: [wasi("proc_exit")], memory: { min: 1 }, body: [...OP.i32(3), ...OP.call(0)] });
const infiniteLoop = tinyModule({ memory: { min: 1 }, body: [...OP.loop, ...OP.br(0), OP.end] });
/** grows memory by 1 MiB until memory.grow fails, then traps */
const memoryBomb = tinyModule({
  memory: { min: 1 },
  body: [...OP.loop, ...OP.i32(16), ...OP.memoryGrow, ...OP.i32(-1), OP.i32Ne, ...OP.brIf(0), OP.end, OP.unreachable],
});


describe("wasi runtime: module checks and limits", function () {
  const runtime = new Runtime({ limits: { timeoutMs: 5_000, memoryBytes: 16 * MiB } });
  const run = (app: Uint8Array, extra: Partial<Parameters<Runtime["run"]>[0]> = {}) =>
    runtime.run({ runtime: "wasi", app, params: "", seed: SEED, ...extra });
  const expectCode = async (p: Promise<unknown>, code: RuntimeErrorCode, message?: RegExp) => {
    const e = await runtimeFailure(p);
    expect(e.code, e.message).to.equal(code);
    if (message) expect(e.message).to.match(message);
    expect(e.message).not.to.include("\n");
  };

  it("runs a module that writes nothing: the empty-directory digest, a fresh output directory", async function () {
    const r = await run(noop);
    expect(r.digest).to.equal(EMPTY_DIRECTORY_DIGEST);
    expect(r.files).to.deep.equal([]);
    expect(r.callbackData).to.equal(undefined);
    expect(await readdir(r.outputDir)).to.deep.equal([]);
  });

  describe("refuses a module before it runs", function () {
    const cases: [string, Uint8Array, RuntimeErrorCode, RegExp][] = [
      ["bytes that are not WebAssembly", Buffer.from("#!/bin/sh\necho hi\n"), "INVALID_MODULE", /not WebAssembly/],
      ["a truncated module", noop.subarray(0, noop.length - 3), "INVALID_MODULE", /invalid module/],
      ["a component or unknown binary version", Uint8Array.from([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]), "INVALID_MODULE", /version/],
      ["a module without _start (a library, not a command)", tinyModule({ memory: { min: 1 }, exportStart: false, body: [] }), "INVALID_MODULE", /_start/],
      ["a module that does not export its memory", tinyModule({ memory: { min: 1 }, exportMemory: false, body: [] }), "INVALID_MODULE", /memory/],
      ["an import outside WASI (env.abort)", tinyModule({ imports: [{ module: "env", name: "abort" }], memory: { min: 1 }, body: [] }), "MISSING_IMPORT", /env\.abort/],
      ["a WASI name that does not exist", tinyModule({ imports: [wasi("fd_teleport")], memory: { min: 1 }, body: [] }), "MISSING_IMPORT", /fd_teleport/],
      ["an imported memory", tinyModule({ importMemory: true, memory: { min: 1 }, body: [] }), "MISSING_IMPORT", /memory/],
      ["a host clock import (AssemblyScript's Date.now)", tinyModule({ imports: [{ module: "env", name: "Date.now" }], memory: { min: 1 }, body: [] }), "NON_DETERMINISTIC_IMPORT", /Date\.now/],
      ["a host random seed import", tinyModule({ imports: [{ module: "env", name: "seed" }], memory: { min: 1 }, body: [] }), "NON_DETERMINISTIC_IMPORT", /env\.seed/],
      ["an initial memory above the limit", tinyModule({ memory: { min: 512 }, body: [] }), "MEMORY_EXCEEDED", /initial memory/],
    ];
    for (const [what, bytes, code, message] of cases) {
      it(`${what}: ${code}`, async function () {
        await expectCode(run(bytes), code, message);
      });
    }
  });

  it("caps a declared memory maximum (or its absence) at the limit", async function () {
    for (const declared of [{ min: 1 }, { min: 1, max: 65_536 }, { min: 2, max: 4 }]) {
      const capped = capMemory(tinyModule({ memory: declared, body: [] }), 8);
      const instance = await WebAssembly.instantiate(await WebAssembly.compile(capped as Uint8Array<ArrayBuffer>));
      const memory = instance.exports.memory as WebAssembly.Memory;
      const max = Math.min(declared.max ?? 8, 8);
      expect(memory.grow(max - declared.min)).to.equal(declared.min);
      expect(() => memory.grow(1)).to.throw(RangeError);
    }
  });

  it("stops an infinite loop at the deadline, then keeps serving", async function () {
    await expectCode(run(infiniteLoop, { limits: { timeoutMs: 300 } }), "DEADLINE_EXCEEDED", /300 ms/);
    expect((await run(noop)).digest).to.equal(EMPTY_DIRECTORY_DIGEST);
  });

  it("refuses a memory bomb at the memory limit, then keeps serving", async function () {
    await expectCode(run(memoryBomb), "MEMORY_EXCEEDED", /limit 16384 KiB/);
    expect((await run(noop)).digest).to.equal(EMPTY_DIRECTORY_DIGEST);
  });

  it("reports a non-zero exit code", async function () {
    await expectCode(run(exit3), "NON_ZERO_EXIT", /exited with code 3/);
  });

  it("reports a trap", async function () {
    await expectCode(run(tinyModule({ memory: { min: 1 }, body: [OP.unreachable] })), "NON_ZERO_EXIT", /trapped: unreachable/);
  });

  it("stops a run when its caller cancels it", async function () {
    const controller = new AbortController();
    const p = run(infiniteLoop, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expectCode(p, "CANCELLED");
  });

  it("refuses a bad seed, bad params, or a params query for a wasi app", async function () {
    await expectCode(run(noop, { seed: "0x1234" }), "INVALID_PARAMS", /seed/);
    await expectCode(run(noop, { params: "--n 5" }), "INVALID_PARAMS", /not JSON/);
    await expectCode(run(noop, { params: '{"args":[1]}' }), "INVALID_PARAMS", /args/);
    await expectCode(run(noop, { params: '{"query":"SELECT 1"}' }), "INVALID_PARAMS", /sql runtime/);
  });

  it("refuses a non-empty output directory rather than mixing old files into the result", async function () {
    const dir = await mkdtemp(join(tmpdir(), "concord-test-out-"));
    await writeFile(join(dir, "stale.txt"), "old");
    await expectCode(run(noop, { outputDir: dir }), "INVALID_PARAMS", /not empty/);
  });

  it("refuses a dataset path that is not a readable file", async function () {
    await expectCode(run(noop, { dataset: { path: "/nonexistent/dataset.csv" } }), "INVALID_DATASET", /cannot be read/);
    await expectCode(run(noop, { dataset: { path: tmpdir() } }), "INVALID_DATASET", /not a regular file/);
  });

  it("reuses a compiled module from the warm cache", async function () {
    const a = runtime.prepare(noop, 16 * MiB);
    expect(runtime.prepare(noop, 16 * MiB)).to.equal(a);
  });
});
