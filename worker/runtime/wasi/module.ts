/**
 * Static checks of a WASI module before it runs, and the memory cap.
 *
 * WebAssembly memory lives outside the V8 heap, so a thread's resource limits do not bound it. The only reliable cap
 * is the module's own declared maximum: we rewrite the memory section so that `maximum = min(declared, limit)`. A
 * `memory.grow` past it then fails inside the module (it returns -1, and a typical allocator traps), and the runtime
 * reports MEMORY_EXCEEDED. A module whose *initial* memory is above the limit is refused before it runs.
 */
import { createHash } from "node:crypto";
import { RuntimeError } from "../errors";

export const WASM_PAGE = 65_536;
export const WASI_MODULE = "wasi_snapshot_preview1";

/** Host imports that only exist to read the host's clock or randomness (AssemblyScript, Emscripten, wasm-bindgen…). */
const NON_DETERMINISTIC_IMPORT = /(^|[._])(date|now|time|clock|random|seed|performance|crypto|getrandom|entropy)/i;

/** WASI preview1 functions (the spec's list); the sandbox provides exactly these. */
export const WASI_PREVIEW1_FUNCTIONS: ReadonlySet<string> = new Set([
  "args_get", "args_sizes_get", "environ_get", "environ_sizes_get", "clock_res_get", "clock_time_get",
  "fd_advise", "fd_allocate", "fd_close", "fd_datasync", "fd_fdstat_get", "fd_fdstat_set_flags",
  "fd_fdstat_set_rights", "fd_filestat_get", "fd_filestat_set_size", "fd_filestat_set_times", "fd_pread",
  "fd_prestat_get", "fd_prestat_dir_name", "fd_pwrite", "fd_read", "fd_readdir", "fd_renumber", "fd_seek",
  "fd_sync", "fd_tell", "fd_write", "path_create_directory", "path_filestat_get", "path_filestat_set_times",
  "path_link", "path_open", "path_readlink", "path_remove_directory", "path_rename", "path_symlink",
  "path_unlink_file", "poll_oneoff", "proc_exit", "proc_raise", "sched_yield", "random_get", "sock_accept",
  "sock_recv", "sock_send", "sock_shutdown",
]);

export interface PreparedModule {
  module: WebAssembly.Module;
  /** sha256 of the original bytes, 0x-hex */
  sha256: string;
  /** memory cap in pages actually applied */
  maxPages: number;
}

/**
 * Validates, caps and compiles a module. Throws RuntimeError INVALID_MODULE, MISSING_IMPORT, NON_DETERMINISTIC_IMPORT or
 * MEMORY_EXCEEDED with one line naming the problem.
 */
export async function prepareModule(bytes: Uint8Array, memoryLimitBytes: number): Promise<PreparedModule> {
  const sha256 = "0x" + createHash("sha256").update(bytes).digest("hex");
  const maxPages = Math.max(1, Math.floor(memoryLimitBytes / WASM_PAGE));
  const patched = capMemory(bytes, maxPages);
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(patched as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw new RuntimeError("INVALID_MODULE", `invalid module: ${(e as Error).message}`);
  }
  checkInterface(module);
  return { module, sha256, maxPages };
}

function checkInterface(module: WebAssembly.Module): void {
  const provided = WASI_PREVIEW1_FUNCTIONS;
  for (const imp of WebAssembly.Module.imports(module)) {
    const name = `${imp.module}.${imp.name}`;
    if (imp.module === WASI_MODULE && imp.kind === "function") {
      if (!provided.has(imp.name)) {
        throw new RuntimeError("MISSING_IMPORT", `missing WASI import: ${name} is not a WASI preview1 function the sandbox provides`);
      }
      continue;
    }
    if (imp.kind === "memory") {
      throw new RuntimeError("MISSING_IMPORT", `missing import: the module imports its memory (${name}); define and export \`memory\` instead`);
    }
    if (imp.kind === "function" && NON_DETERMINISTIC_IMPORT.test(imp.name)) {
      throw new RuntimeError(
        "NON_DETERMINISTIC_IMPORT",
        `non-deterministic module: it imports ${name}, a host clock or random source; use WASI clock_time_get/random_get, which the sandbox makes deterministic`,
      );
    }
    throw new RuntimeError(
      "MISSING_IMPORT",
      `missing import: the module imports ${name} (${imp.kind}); the wasi runtime provides only ${WASI_MODULE} functions and memory`,
    );
  }
  const exported = WebAssembly.Module.exports(module);
  if (!exported.some((e) => e.name === "_start" && e.kind === "function")) {
    throw new RuntimeError("INVALID_MODULE", "invalid module: no exported `_start` function (not a WASI command)");
  }
  if (!exported.some((e) => e.name === "memory" && e.kind === "memory")) {
    throw new RuntimeError("INVALID_MODULE", "invalid module: no exported `memory` (WASI needs it to pass arguments)");
  }
}

// ------------------------------------------------------------------------------------------------ binary rewrite

class Reader {
  constructor(
    readonly b: Uint8Array,
    public pos = 0,
  ) {}
  byte(): number {
    if (this.pos >= this.b.length) throw new RuntimeError("INVALID_MODULE", "invalid module: unexpected end of bytes");
    return this.b[this.pos++];
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = this.byte();
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
      if (shift > 35) throw new RuntimeError("INVALID_MODULE", "invalid module: LEB128 too long");
    }
  }
  skip(n: number): void {
    this.pos += n;
  }
  name(): string {
    const n = this.u32();
    const s = Buffer.from(this.b.subarray(this.pos, this.pos + n)).toString("utf8");
    this.pos += n;
    return s;
  }
  limits(): { flags: number; min: number; max?: number } {
    const flags = this.byte();
    if (flags > 1) {
      throw new RuntimeError("INVALID_MODULE", "invalid module: shared or 64-bit memories and tables are not supported");
    }
    const min = this.u32();
    return flags === 1 ? { flags, min, max: this.u32() } : { flags, min };
  }
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

function checkInitial(min: number, maxPages: number): void {
  if (min > maxPages) {
    throw new RuntimeError(
      "MEMORY_EXCEEDED",
      `memory exceeded: the module asks for ${min * 64} KiB of initial memory, the limit is ${maxPages * 64} KiB`,
    );
  }
}

/** Returns the module with its memory maximum capped at `maxPages`; refuses an initial memory above it. */
export function capMemory(bytes: Uint8Array, maxPages: number): Uint8Array {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new RuntimeError("INVALID_MODULE", "invalid module: not WebAssembly (missing the \\0asm header)");
  }
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw new RuntimeError("INVALID_MODULE", "invalid module: unsupported WebAssembly binary version (a component?)");
  }
  const r = new Reader(bytes, 8);
  let memorySection: { start: number; end: number; entries: { flags: number; min: number; max?: number }[] } | undefined;
  while (r.pos < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    const end = start + size;
    if (end > bytes.length) throw new RuntimeError("INVALID_MODULE", "invalid module: a section runs past the end");
    if (id === 2) {
      const count = r.u32();
      for (let i = 0; i < count; i++) {
        r.name();
        r.name();
        const kind = r.byte();
        if (kind === 0) r.u32();
        else if (kind === 1) {
          r.byte();
          r.limits();
        } else if (kind === 2) {
          r.limits(); // refused later, by name, in checkInterface
        } else if (kind === 3) r.skip(2);
        else if (kind === 4) {
          r.byte();
          r.u32();
        } else throw new RuntimeError("INVALID_MODULE", `invalid module: unknown import kind ${kind}`);
      }
    } else if (id === 5) {
      const count = r.u32();
      const entries = [];
      for (let i = 0; i < count; i++) entries.push(r.limits());
      memorySection = { start: start - 1 - leb(size).length, end, entries };
    }
    r.pos = end;
  }
  if (!memorySection) return bytes;
  const body: number[] = [...leb(memorySection.entries.length)];
  for (const e of memorySection.entries) {
    checkInitial(e.min, maxPages);
    const max = Math.min(e.max ?? maxPages, maxPages);
    body.push(1, ...leb(e.min), ...leb(max));
  }
  const section = Uint8Array.from([5, ...leb(body.length), ...body]);
  const patched = new Uint8Array(bytes.length - (memorySection.end - memorySection.start) + section.length);
  patched.set(bytes.subarray(0, memorySection.start), 0);
  patched.set(section, memorySection.start);
  patched.set(bytes.subarray(memorySection.end), memorySection.start + section.length);
  return patched;
}
