// @ts-check
/**
 * The WASI sandbox thread (plain JavaScript so a thread starts without a TypeScript compiler; see thread.ts).
 *
 * It instantiates a module compiled and checked by module.ts with node:wasi (preview1) and wraps the WASI imports so
 * that everything a module can observe is the same on every host:
 * - clocks are virtual: every clock_time_get advances one shared counter by 1 ms; realtime starts at REALTIME_EPOCH;
 *   poll_oneoff never sleeps (a clock subscription advances the virtual clock to its deadline);
 * - random_get is SHA-256 in counter mode over the task seed;
 * - stdin is empty; stdout/stderr are captured up to a bound and never reach the host's;
 * - fd_readdir lists entries sorted by the bytes of their names (the host's order depends on its file system);
 * - filestat inode, device, link count and timestamps read as 0 (or 1 link);
 * - /in (preopen fd 3) is read-only; /out (fd 4) refuses links and symlinks, and counts written bytes;
 * - the environment and arguments are given by the caller (the host's never leak: `env` is explicit).
 * Each message is a job; the thread posts one reply per job: `{ ok: true, value: { exitCode: 0, stdout, stderr, … } }`
 * or `{ ok: false, code, message }`. A thread serves several jobs in turn (thread.ts), so everything a job can observe
 * is built anew for it in `main` (the WASI instance, the module instance and its memory, the virtual clock, the random
 * stream, the descriptor table, the logs); nothing outlives a job but the module-level constants below. A full
 * garbage collection frees each job's instance (250 ms after its reply, or before the next job if that comes sooner),
 * so node:wasi's grown memories never pile up.
 */
const { parentPort } = require("node:worker_threads");
const { WASI } = require("node:wasi");
const { createHash } = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");

/** 2000-01-01T00:00:00Z in nanoseconds: the virtual realtime clock's origin */
const REALTIME_EPOCH = 946_684_800_000_000_000n;
const CLOCK_STEP = 1_000_000n; // 1 ms per clock reading
const PAGE = 65_536;

// WASI errno values used here
const E = { SUCCESS: 0, BADF: 8, FBIG: 22, INVAL: 28, NOTSUP: 58, PERM: 63, ROFS: 69, SPIPE: 70 };
const OFLAGS_CREAT = 1;
const OFLAGS_TRUNC = 8;
const FDFLAGS_APPEND = 1;
// rights that only read: fd_read, fd_seek, fd_fdstat_set_flags, fd_tell, fd_advise, path_open, fd_readdir,
// path_readlink, path_filestat_get, fd_filestat_get, poll_fd_readwrite
const READ_ONLY_RIGHTS =
  (1n << 1n) | (1n << 2n) | (1n << 3n) | (1n << 5n) | (1n << 7n) | (1n << 13n) | (1n << 14n) | (1n << 15n) | (1n << 18n) | (1n << 21n) | (1n << 27n);
// rights that modify a file: asking for them under /in is opening for writing on a read-only file system
const WRITE_RIGHTS = (1n << 6n) | (1n << 8n) | (1n << 22n); // fd_write, fd_allocate, fd_filestat_set_size
const FILETYPE_CHARACTER_DEVICE = 2;
const FILETYPE_DIRECTORY = 3;
const FILETYPE_REGULAR_FILE = 4;
const FILETYPE_SYMBOLIC_LINK = 7;

/**
 * @typedef {{ module: WebAssembly.Module, args: string[], env: Record<string,string>, inDir: string, outDir: string,
 *   seed: string, maxPages: number, outputBytes: number, logBytes: number }} Job
 */
/** @type {Job} */
let job;

/** @param {{ok: boolean} & Record<string, unknown>} reply */
function post(reply) {
  parentPort?.postMessage(reply);
}

class Log {
  /** @param {number} cap */
  constructor(cap) {
    this.cap = cap;
    /** @type {Buffer[]} */
    this.parts = [];
    this.size = 0;
    this.truncated = false;
  }
  /** @param {Uint8Array} bytes */
  push(bytes) {
    const room = this.cap - this.size;
    if (room <= 0) {
      if (bytes.length) this.truncated = true;
      return;
    }
    const part = bytes.length > room ? bytes.subarray(0, room) : bytes;
    if (part.length < bytes.length) this.truncated = true;
    this.parts.push(Buffer.from(part));
    this.size += part.length;
  }
  bytes() {
    return new Uint8Array(Buffer.concat(this.parts));
  }
}

function main() {
  const stdout = new Log(job.logBytes);
  const stderr = new Log(job.logBytes);
  const nulls = [fs.openSync("/dev/null", "r"), fs.openSync("/dev/null", "w"), fs.openSync("/dev/null", "w")];
  const wasi = new WASI({
    version: "preview1",
    args: job.args,
    env: job.env,
    preopens: { "/in": job.inDir, "/out": job.outDir },
    returnOnExit: true,
    stdin: nulls[0],
    stdout: nulls[1],
    stderr: nulls[2],
  });
  /** @type {WebAssembly.Memory | undefined} */
  let memory;
  const view = () => new DataView(/** @type {WebAssembly.Memory} */ (memory).buffer);
  const bytesAt = (/** @type {number} */ ptr, /** @type {number} */ len) =>
    new Uint8Array(/** @type {WebAssembly.Memory} */ (memory).buffer, ptr, len);

  // ---------------------------------------------------------------------------- virtual clock and randomness
  let ticks = 0n;
  const seed = Buffer.from(job.seed.replace(/^0x/, ""), "hex");
  let randomCounter = 0n;
  let randomPool = Buffer.alloc(0);
  /** @param {number} n */
  const randomBytes = (n) => {
    while (randomPool.length < n) {
      const counter = Buffer.alloc(8);
      counter.writeBigUInt64BE(randomCounter++);
      randomPool = Buffer.concat([randomPool, createHash("sha256").update(seed).update(counter).digest()]);
    }
    const out = randomPool.subarray(0, n);
    randomPool = randomPool.subarray(n);
    return out;
  };

  // ---------------------------------------------------------------------------- descriptors we know the host path of
  /** @type {Map<number, { host: string, readOnly: boolean }>} */
  const fds = new Map([
    [3, { host: job.inDir, readOnly: true }],
    [4, { host: job.outDir, readOnly: false }],
  ]);
  const readOnly = (/** @type {number} */ fd) => fds.get(fd)?.readOnly === true;
  const isStdio = (/** @type {number} */ fd) => fd >= 0 && fd <= 2;
  const writeBudget = job.outputBytes * 4; // bytes written to /out, rewrites included; the final size is checked apart
  let written = 0;
  let outputExceeded = false;
  const refuseGrowth = () => {
    outputExceeded = true;
    return E.FBIG;
  };

  const w = /** @type {Record<string, (...a: any[]) => number>} */ (wasi.wasiImport);
  /** @type {Record<string, (...a: any[]) => number>} */
  const imports = { ...w };

  /** @param {number} iovs @param {number} count */
  const iovecTotal = (iovs, count) => {
    const dv = view();
    let total = 0;
    for (let i = 0; i < count; i++) total += dv.getUint32(iovs + i * 8 + 4, true);
    return total;
  };

  imports.clock_time_get = (id, _precision, out) => {
    ticks += CLOCK_STEP;
    view().setBigUint64(out, id === 0 ? REALTIME_EPOCH + ticks : ticks, true);
    return E.SUCCESS;
  };
  imports.clock_res_get = (_id, out) => {
    view().setBigUint64(out, CLOCK_STEP, true);
    return E.SUCCESS;
  };
  imports.random_get = (ptr, len) => {
    bytesAt(ptr, len).set(randomBytes(len));
    return E.SUCCESS;
  };
  imports.sched_yield = () => E.SUCCESS;
  imports.poll_oneoff = (inPtr, outPtr, nsubs, neventsPtr) => {
    const dv = view();
    /** @type {number[]} */
    const fdSubs = [];
    let earliest = -1;
    let earliestAt = 0n;
    for (let i = 0; i < nsubs; i++) {
      const s = inPtr + i * 48;
      const tag = dv.getUint8(s + 8);
      if (tag === 0) {
        const clock = dv.getUint32(s + 16, true);
        const timeout = dv.getBigUint64(s + 24, true);
        const absolute = (dv.getUint16(s + 40, true) & 1) === 1;
        const now = clock === 0 ? REALTIME_EPOCH + ticks : ticks;
        const wait = absolute ? (timeout > now ? timeout - now : 0n) : timeout;
        if (earliest < 0 || ticks + wait < earliestAt) {
          earliest = i;
          earliestAt = ticks + wait;
        }
      } else fdSubs.push(i);
    }
    const events = fdSubs.length ? fdSubs : earliest >= 0 ? [earliest] : [];
    if (!fdSubs.length && earliest >= 0) ticks = earliestAt; // the sleep happens in virtual time only
    events.forEach((i, n) => {
      const s = inPtr + i * 48;
      const e = outPtr + n * 32;
      bytesAt(e, 32).fill(0);
      dv.setBigUint64(e, dv.getBigUint64(s, true), true);
      dv.setUint8(e + 10, dv.getUint8(s + 8));
    });
    dv.setUint32(neventsPtr, events.length, true);
    return E.SUCCESS;
  };

  // ---------------------------------------------------------------------------- stdio
  imports.fd_write = (fd, iovs, count, nwrittenPtr) => {
    if (fd === 1 || fd === 2) {
      const dv = view();
      let total = 0;
      for (let i = 0; i < count; i++) {
        const ptr = dv.getUint32(iovs + i * 8, true);
        const len = dv.getUint32(iovs + i * 8 + 4, true);
        (fd === 1 ? stdout : stderr).push(bytesAt(ptr, len));
        total += len;
      }
      dv.setUint32(nwrittenPtr, total, true);
      return E.SUCCESS;
    }
    if (readOnly(fd)) return E.ROFS;
    if (fds.has(fd)) {
      const total = iovecTotal(iovs, count);
      if (written + total > writeBudget) return refuseGrowth();
      written += total;
    }
    return w.fd_write(fd, iovs, count, nwrittenPtr);
  };
  imports.fd_pwrite = (fd, iovs, count, offset, nwrittenPtr) => {
    if (isStdio(fd)) return E.SPIPE;
    if (readOnly(fd)) return E.ROFS;
    if (fds.has(fd)) {
      const total = iovecTotal(iovs, count);
      if (written + total > writeBudget || offset + BigInt(total) > BigInt(job.outputBytes)) return refuseGrowth();
      written += total;
    }
    return w.fd_pwrite(fd, iovs, count, offset, nwrittenPtr);
  };
  imports.fd_read = (fd, iovs, count, nreadPtr) => {
    if (fd === 0) {
      view().setUint32(nreadPtr, 0, true); // stdin is empty
      return E.SUCCESS;
    }
    return w.fd_read(fd, iovs, count, nreadPtr);
  };
  imports.fd_pread = (fd, iovs, count, offset, nreadPtr) => (isStdio(fd) ? E.SPIPE : w.fd_pread(fd, iovs, count, offset, nreadPtr));
  imports.fd_seek = (fd, offset, whence, out) => (isStdio(fd) ? E.SPIPE : w.fd_seek(fd, offset, whence, out));
  imports.fd_tell = (fd, out) => (isStdio(fd) ? E.SPIPE : w.fd_tell(fd, out));
  imports.fd_fdstat_get = (fd, out) => {
    if (!isStdio(fd)) return w.fd_fdstat_get(fd, out);
    const dv = view();
    bytesAt(out, 24).fill(0);
    dv.setUint8(out, FILETYPE_CHARACTER_DEVICE);
    dv.setBigUint64(out + 8, fd === 0 ? (1n << 1n) | (1n << 27n) : (1n << 6n) | (1n << 27n), true);
    return E.SUCCESS;
  };

  // ---------------------------------------------------------------------------- file metadata made host-independent
  /** @param {number} buf */
  const scrubFilestat = (buf) => {
    const dv = view();
    dv.setBigUint64(buf, 0n, true); // dev
    dv.setBigUint64(buf + 8, 0n, true); // ino
    dv.setBigUint64(buf + 24, 1n, true); // nlink
    if (dv.getUint8(buf + 16) === FILETYPE_DIRECTORY) dv.setBigUint64(buf + 32, 0n, true); // a directory's size is fs-specific
    dv.setBigUint64(buf + 40, 0n, true); // atim
    dv.setBigUint64(buf + 48, 0n, true); // mtim
    dv.setBigUint64(buf + 56, 0n, true); // ctim
  };
  imports.fd_filestat_get = (fd, buf) => {
    if (isStdio(fd)) {
      bytesAt(buf, 64).fill(0);
      view().setUint8(buf + 16, FILETYPE_CHARACTER_DEVICE);
      view().setBigUint64(buf + 24, 1n, true);
      return E.SUCCESS;
    }
    const r = w.fd_filestat_get(fd, buf);
    if (r === E.SUCCESS) scrubFilestat(buf);
    return r;
  };
  imports.path_filestat_get = (fd, flags, p, len, buf) => {
    const r = w.path_filestat_get(fd, flags, p, len, buf);
    if (r === E.SUCCESS) scrubFilestat(buf);
    return r;
  };
  imports.fd_readdir = (fd, buf, bufLen, cookie, bufusedPtr) => {
    const dir = fds.get(fd);
    if (!dir) return w.fd_readdir(fd, buf, bufLen, cookie, bufusedPtr);
    /** @type {fs.Dirent[]} */
    let entries;
    try {
      entries = fs.readdirSync(dir.host, { withFileTypes: true });
    } catch {
      return E.BADF;
    }
    entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    const dv = view();
    let used = 0;
    for (let i = Number(cookie); i < entries.length && used < bufLen; i++) {
      const name = Buffer.from(entries[i].name);
      const d = Buffer.alloc(24 + name.length);
      d.writeBigUInt64LE(BigInt(i + 1), 0); // d_next: the cookie of the next entry
      d.writeUInt32LE(name.length, 16);
      const ent = entries[i];
      d.writeUInt8(
        ent.isDirectory() ? FILETYPE_DIRECTORY : ent.isFile() ? FILETYPE_REGULAR_FILE : ent.isSymbolicLink() ? FILETYPE_SYMBOLIC_LINK : 0,
        20,
      );
      name.copy(d, 24);
      const n = Math.min(d.length, bufLen - used); // a partial last entry is allowed: the caller retries with a bigger buffer
      bytesAt(buf + used, n).set(d.subarray(0, n));
      used += n;
    }
    dv.setUint32(bufusedPtr, used, true);
    return E.SUCCESS;
  };

  // ---------------------------------------------------------------------------- opening, read-only input, no links
  const readPath = (/** @type {number} */ p, /** @type {number} */ len) => Buffer.from(bytesAt(p, len)).toString("utf8");
  imports.path_open = (dirfd, dirflags, p, len, oflags, rightsBase, rightsInheriting, fdflags, fdPtr) => {
    const dir = fds.get(dirfd);
    if (dir?.readOnly) {
      if (oflags & (OFLAGS_CREAT | OFLAGS_TRUNC) || fdflags & FDFLAGS_APPEND || rightsBase & WRITE_RIGHTS) return E.ROFS;
      rightsBase &= READ_ONLY_RIGHTS;
      rightsInheriting &= READ_ONLY_RIGHTS;
    }
    const r = w.path_open(dirfd, dirflags, p, len, oflags, rightsBase, rightsInheriting, fdflags, fdPtr);
    if (r === E.SUCCESS && dir) {
      const fd = view().getUint32(fdPtr, true);
      fds.set(fd, { host: path.join(dir.host, path.posix.normalize("/" + readPath(p, len))), readOnly: dir.readOnly });
    }
    return r;
  };
  imports.fd_close = (fd) => {
    const r = w.fd_close(fd);
    if (r === E.SUCCESS) fds.delete(fd);
    return r;
  };
  imports.fd_renumber = (from, to) => {
    const r = w.fd_renumber(from, to);
    if (r === E.SUCCESS) {
      const info = fds.get(from);
      fds.delete(from);
      if (info) fds.set(to, info);
      else fds.delete(to);
    }
    return r;
  };
  const guardWrite = (/** @type {string} */ name, /** @type {number[]} */ fdArgs) => {
    imports[name] = (...a) => (fdArgs.some((i) => readOnly(a[i]) || isStdio(a[i])) ? E.ROFS : w[name](...a));
  };
  guardWrite("path_create_directory", [0]);
  guardWrite("path_unlink_file", [0]);
  guardWrite("path_remove_directory", [0]);
  guardWrite("path_rename", [0, 3]);
  guardWrite("path_filestat_set_times", [0]);
  guardWrite("fd_filestat_set_times", [0]);
  imports.fd_filestat_set_size = (fd, size) => {
    if (readOnly(fd) || isStdio(fd)) return E.ROFS;
    return size > BigInt(job.outputBytes) ? refuseGrowth() : w.fd_filestat_set_size(fd, size);
  };
  imports.fd_allocate = (fd, offset, len) => {
    if (readOnly(fd) || isStdio(fd)) return E.ROFS;
    return offset + len > BigInt(job.outputBytes) ? refuseGrowth() : w.fd_allocate(fd, offset, len);
  };
  imports.path_symlink = () => E.PERM; // a link could point outside the sandbox's view, or make the output ambiguous
  imports.path_link = () => E.PERM;
  for (const name of ["sock_accept", "sock_recv", "sock_send", "sock_shutdown"]) if (name in imports) imports[name] = () => E.NOTSUP;

  // ---------------------------------------------------------------------------- run
  // A failed memory.grow is invisible from outside the module (it returns -1, then the module traps or exits), so a
  // failure with more than half the limit in use is reported as the memory limit: allocators grow by doubling or by
  // the request, so when one fails the memory in use is at least about half of the cap.
  const atMemoryCap = () => memory !== undefined && memory.buffer.byteLength * 2 >= job.maxPages * PAGE;
  const inUse = () => `${Math.round((memory?.buffer.byteLength ?? 0) / 1024)} KiB in use, limit ${job.maxPages * 64} KiB`;
  const logs = () => ({
    stdout: stdout.bytes(),
    stderr: stderr.bytes(),
    stdoutTruncated: stdout.truncated,
    stderrTruncated: stderr.truncated,
  });
  const stderrTail = () => {
    const text = Buffer.from(stderr.bytes()).toString("utf8").trim().split("\n").pop() ?? "";
    return text ? `; stderr: ${JSON.stringify(text.slice(-200))}` : "";
  };
  /** @param {string} code @param {string} message */
  const fail = (code, message) => post({ ok: false, code, message });

  /** @type {WebAssembly.Instance} */
  let instance;
  try {
    instance = new WebAssembly.Instance(job.module, { wasi_snapshot_preview1: imports });
  } catch (e) {
    const err = /** @type {Error} */ (e);
    if (err instanceof RangeError) return fail("MEMORY_EXCEEDED", `memory exceeded: cannot allocate the module's memory (${err.message})`);
    return fail("MISSING_IMPORT", `cannot instantiate the module: ${err.message}`);
  }
  memory = /** @type {WebAssembly.Memory} */ (instance.exports.memory);
  let exitCode;
  try {
    exitCode = wasi.start(instance);
  } catch (e) {
    const err = /** @type {Error} */ (e);
    if (outputExceeded) return fail("OUTPUT_TOO_LARGE", `output too large: the app wrote more than the limit of ${job.outputBytes} bytes`);
    if (atMemoryCap()) return fail("MEMORY_EXCEEDED", `memory exceeded (${inUse()}): the app trapped: ${err.message}${stderrTail()}`);
    if (err instanceof RangeError && /call stack/i.test(err.message)) return fail("NON_ZERO_EXIT", `app trapped: stack overflow${stderrTail()}`);
    if (err instanceof WebAssembly.RuntimeError) return fail("NON_ZERO_EXIT", `app trapped: ${err.message}${stderrTail()}`);
    return fail("NON_ZERO_EXIT", `app failed: ${err.message}${stderrTail()}`);
  } finally {
    for (const fd of nulls) fs.closeSync(fd);
  }
  if (outputExceeded) return fail("OUTPUT_TOO_LARGE", `output too large: the app wrote more than the limit of ${job.outputBytes} bytes`);
  if (exitCode !== 0) {
    if (atMemoryCap()) return fail("MEMORY_EXCEEDED", `memory exceeded (${inUse()}): the app exited with code ${exitCode}${stderrTail()}`);
    return fail("NON_ZERO_EXIT", `app exited with code ${exitCode}${stderrTail()}`);
  }
  post({ ok: true, value: { exitCode, ...logs(), memoryBytes: memory.buffer.byteLength } });
}

// A full GC after each job (see above): `gc` is exposed to a fresh context once the flag is set.
require("node:v8").setFlagsFromString("--expose-gc");
const collectGarbage = /** @type {() => void} */ (require("node:vm").runInNewContext("gc"));

/**
 * The collection runs this long after an answer rather than at once, where its CPU would compete with what the answer
 * sets off (the worker's commit, the scheduler's relay); a job arriving sooner has it run first, so no job starts on
 * an uncollected heap.
 */
const COLLECT_DELAY_MS = 250;
/** @type {NodeJS.Timeout | null} */
let collectDue = null;

function collectNow() {
  if (collectDue) clearTimeout(collectDue);
  collectDue = null;
  collectGarbage();
}

// Jobs arrive as messages (see thread.ts): the thread may have been started before the first job existed.
parentPort?.on("message", (/** @type {Job} */ message) => {
  if (collectDue) collectNow();
  job = message;
  try {
    main();
  } catch (e) {
    post({ ok: false, code: "NON_ZERO_EXIT", message: `sandbox failed: ${/** @type {Error} */ (e).message}` });
  }
  collectDue = setTimeout(collectNow, COLLECT_DELAY_MS);
});
