/**
 * Our own tiny WASI preview1 bindings for the example apps (AssemblyScript).
 *
 * Why not `@assemblyscript/wasi-shim`: we want every import of an app to be visible in one short file, so that a
 * reviewer can see that a deterministic app imports nothing but `wasi_snapshot_preview1` functions (the runtime
 * refuses any other import). The raw calls return the WASI errno (0 = success); the helpers below them exit the app
 * with a one-line message on stderr when something the app cannot do without fails.
 *
 * Conventions (see apps/README.md): argv = ["app", ...params.args]; preopened directories "/in" (read-only, the
 * dataset is "/in/dataset") and "/out" (writable, the result is "/out/result.json"); stdout/stderr are logs only.
 */

// ------------------------------------------------------------------------------------------------------ raw imports

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "args_sizes_get")
export declare function args_sizes_get(argc: usize, argvBufSize: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "args_get")
export declare function args_get(argv: usize, argvBuf: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "environ_sizes_get")
export declare function environ_sizes_get(count: usize, bufSize: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "environ_get")
export declare function environ_get(environ: usize, environBuf: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_write")
export declare function fd_write(fd: u32, iovs: usize, iovsLen: usize, nwritten: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_read")
export declare function fd_read(fd: u32, iovs: usize, iovsLen: usize, nread: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_close")
export declare function fd_close(fd: u32): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_prestat_get")
export declare function fd_prestat_get(fd: u32, buf: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_prestat_dir_name")
export declare function fd_prestat_dir_name(fd: u32, path: usize, pathLen: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_open")
export declare function path_open(
  dirFd: u32,
  lookupFlags: u32,
  path: usize,
  pathLen: usize,
  oflags: u16,
  rightsBase: u64,
  rightsInheriting: u64,
  fdFlags: u16,
  fdOut: usize,
): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_unlink_file")
export declare function path_unlink_file(dirFd: u32, path: usize, pathLen: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_create_directory")
export declare function path_create_directory(dirFd: u32, path: usize, pathLen: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_filestat_get")
export declare function path_filestat_get(dirFd: u32, lookupFlags: u32, path: usize, pathLen: usize, buf: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_filestat_get")
export declare function fd_filestat_get(fd: u32, buf: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_fdstat_get")
export declare function fd_fdstat_get(fd: u32, buf: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_readdir")
export declare function fd_readdir(fd: u32, buf: usize, bufLen: usize, cookie: u64, bufUsed: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "clock_res_get")
export declare function clock_res_get(clockId: u32, resolution: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "clock_time_get")
export declare function clock_time_get(clockId: u32, precision: u64, time: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "random_get")
export declare function random_get(buf: usize, bufLen: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "proc_exit")
export declare function proc_exit(code: u32): void;

// -------------------------------------------------------------------------------------------------------- constants

export const ERRNO_SUCCESS: u16 = 0;
export const ERRNO_BADF: u16 = 8;

export const FD_STDOUT: u32 = 1;
export const FD_STDERR: u32 = 2;

export const CLOCK_REALTIME: u32 = 0;
export const CLOCK_MONOTONIC: u32 = 1;

export const OFLAGS_CREAT: u16 = 1;
export const OFLAGS_DIRECTORY: u16 = 2;
export const OFLAGS_EXCL: u16 = 4;
export const OFLAGS_TRUNC: u16 = 8;

export const RIGHT_FD_READ: u64 = 1 << 1;
export const RIGHT_FD_SEEK: u64 = 1 << 2;
export const RIGHT_FD_WRITE: u64 = 1 << 6;
export const RIGHT_FD_READDIR: u64 = 1 << 14;
export const RIGHT_FD_FILESTAT_GET: u64 = 1 << 21;

/** Exit code of a failed assertion / trap-like abort, as a shell reports SIGABRT (128 + 6). */
export const EXIT_ABORT: u32 = 134;

/** Scratch words for out-parameters: every raw call here is synchronous and non-reentrant, so one area suffices. */
const scratch = memory.data(64);

// ---------------------------------------------------------------------------------------------------------- output

/** Writes all `len` bytes at `ptr` to `fd`, looping over short writes; returns the errno of the first failure. */
export function writeAll(fd: u32, ptr: usize, len: usize): u16 {
  while (len > 0) {
    store<usize>(scratch, ptr);
    store<usize>(scratch, len, 4);
    const err = fd_write(fd, scratch, 1, scratch + 8);
    if (err != ERRNO_SUCCESS) return err;
    const written = <usize>load<u32>(scratch + 8);
    if (written == 0) return 29; // EIO: the host accepted nothing, do not spin
    ptr += written;
    len -= written;
  }
  return ERRNO_SUCCESS;
}

/** Writes a string as UTF-8 to `fd`, ignoring failures (logs are best effort). */
export function writeString(fd: u32, text: string): void {
  const bytes = String.UTF8.encode(text);
  writeAll(fd, changetype<usize>(bytes), <usize>bytes.byteLength);
}

/** Prints a line on stdout. */
export function print(line: string): void {
  writeString(FD_STDOUT, line + "\n");
}

/** Prints a line on stderr. */
export function eprint(line: string): void {
  writeString(FD_STDERR, line + "\n");
}

/** Ends the process with `code` (never returns). */
export function exit(code: u32): void {
  proc_exit(code);
  unreachable();
}

/** Prints `message` on stderr and exits with `code` (1 unless told). */
export function die(message: string, code: u32 = 1): void {
  eprint(message);
  exit(code);
}

/**
 * The app's `abort` (chosen with `--use abort=wasiAbort`): a failed `assert`, an out-of-bounds access or an
 * allocation failure print their message on stderr and exit 134, instead of importing the default `env.abort`.
 */
// @ts-ignore: decorator
@global export function wasiAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let text = "abort: " + (message !== null ? message : "(no message)");
  if (fileName !== null) text += " at " + fileName + ":" + line.toString() + ":" + column.toString();
  eprint(text);
  exit(EXIT_ABORT);
}

// ------------------------------------------------------------------------------------------------- argv and environ

/** Reads a NUL-separated list (argv or environ) through its sizes/get pair. */
function readStringList(environ: bool): string[] {
  const err = environ ? environ_sizes_get(scratch, scratch + 4) : args_sizes_get(scratch, scratch + 4);
  if (err != ERRNO_SUCCESS) die("wasi: cannot read " + (environ ? "environ" : "argv") + " sizes, errno " + err.toString());
  const count = <i32>load<u32>(scratch);
  const bufSize = <usize>load<u32>(scratch + 4);
  const pointers = heap.alloc(<usize>count * sizeof<usize>() + 4);
  const buf = heap.alloc(bufSize + 1);
  const err2 = environ ? environ_get(pointers, buf) : args_get(pointers, buf);
  if (err2 != ERRNO_SUCCESS) die("wasi: cannot read " + (environ ? "environ" : "argv") + ", errno " + err2.toString());
  const out = new Array<string>(count);
  for (let i = 0; i < count; i++) {
    const start = load<usize>(pointers + <usize>i * sizeof<usize>());
    let end = start;
    while (end < buf + bufSize && load<u8>(end) != 0) end++;
    out[i] = String.UTF8.decodeUnsafe(start, end - start);
  }
  return out;
}

/** The command line, argv[0] ("app") included. */
export function args(): string[] {
  return readStringList(false);
}

/** The environment as "NAME=value" strings, in the order the host gives them. */
export function environ(): string[] {
  return readStringList(true);
}

// --------------------------------------------------------------------------------------------------------- preopens

/** Names of the preopened directories by fd - 3 (fd 3 is the first preopen), read once. */
let preopenNames: string[] | null = null;

/** The preopened directories, in fd order starting at fd 3 (stops at the first fd that is not a preopen). */
export function preopens(): string[] {
  let names = preopenNames;
  if (names !== null) return names;
  names = new Array<string>();
  for (let fd: u32 = 3; fd < 64; fd++) {
    if (fd_prestat_get(fd, scratch) != ERRNO_SUCCESS) break;
    if (load<u8>(scratch) != 0) break; // only directories are preopens in preview1
    const nameLen = <usize>load<u32>(scratch, 4);
    const buf = heap.alloc(nameLen + 1);
    if (fd_prestat_dir_name(fd, buf, nameLen) != ERRNO_SUCCESS) break;
    // some hosts count a trailing NUL in the length
    let len = nameLen;
    while (len > 0 && load<u8>(buf + len - 1) == 0) len--;
    names.push(String.UTF8.decodeUnsafe(buf, len));
  }
  preopenNames = names;
  return names;
}

/** The fd of the preopened directory called `name` ("/in", "/out"), or -1 when the host did not preopen it. */
export function preopenFd(name: string): i32 {
  const names = preopens();
  for (let i = 0; i < names.length; i++) {
    if (names[i] == name) return 3 + i;
  }
  return -1;
}

/** Opens `relPath` below the directory `dirFd`; returns the new fd, or -errno. */
export function openAt(dirFd: u32, relPath: string, oflags: u16, rights: u64, fdFlags: u16 = 0): i32 {
  const path = String.UTF8.encode(relPath);
  const err = path_open(dirFd, 0, changetype<usize>(path), <usize>path.byteLength, oflags, rights, rights, fdFlags, scratch);
  if (err != ERRNO_SUCCESS) return -<i32>err;
  return <i32>load<u32>(scratch);
}

/** An absolute path split at its preopen: "/out/a" → the fd of "/out" and "a". */
export class Resolved {
  constructor(public dirFd: i32, public rel: string) {}
}

/** Finds the preopened directory holding `path` (e.g. "/in/dataset"); the fd is -1 when none does. */
export function resolve(path: string): Resolved {
  const names = preopens();
  for (let i = 0; i < names.length; i++) {
    const dir = names[i];
    if (path.length > dir.length + 1 && path.startsWith(dir) && path.charCodeAt(dir.length) == 0x2f) {
      return new Resolved(3 + i, path.substring(dir.length + 1));
    }
  }
  return new Resolved(-1, path);
}

/** Opens an absolute path ("/out/result.json") below its preopen; returns the fd or -errno (-44 ENOENT if none). */
export function openPath(path: string, oflags: u16, rights: u64, fdFlags: u16 = 0): i32 {
  const r = resolve(path);
  if (r.dirFd < 0) return -44;
  return openAt(<u32>r.dirFd, r.rel, oflags, rights, fdFlags);
}

// ------------------------------------------------------------------------------------------------------------ files

/** Size of an open file from fd_filestat_get, or 0 when the host cannot tell (reading still works). */
function sizeHint(fd: u32): u64 {
  if (fd_filestat_get(fd, scratch) != ERRNO_SUCCESS) return 0;
  return load<u64>(scratch, 32);
}

/** Largest single fd_read: keeps every host call short (a host may cap one read anyway); costs nothing measurable. */
const READ_CHUNK: i32 = 1 << 20;

/** Reads a whole file (e.g. "/in/dataset"); exits with a message when it cannot. */
export function readFile(path: string): Uint8Array {
  const fd = openPath(path, 0, RIGHT_FD_READ | RIGHT_FD_SEEK | RIGHT_FD_FILESTAT_GET);
  if (fd < 0) die("cannot open " + path + ": errno " + (-fd).toString());
  const hint = sizeHint(<u32>fd);
  if (hint > <u64>0x7fff0000) die("cannot read " + path + ": " + hint.toString() + " bytes do not fit in memory");
  let capacity = <i32>hint + 1; // +1 so that reaching EOF never needs a grow
  if (capacity < 4096) capacity = 4096;
  let buffer = new ArrayBuffer(capacity);
  let length = 0;
  while (true) {
    if (length == capacity) {
      if (capacity >= 0x40000000) die("cannot read " + path + ": too large");
      const bigger = new ArrayBuffer(capacity * 2);
      memory.copy(changetype<usize>(bigger), changetype<usize>(buffer), <usize>length);
      buffer = bigger;
      capacity *= 2;
    }
    store<usize>(scratch, changetype<usize>(buffer) + <usize>length);
    const room = capacity - length;
    store<usize>(scratch, <usize>(room < READ_CHUNK ? room : READ_CHUNK), 4);
    const err = fd_read(<u32>fd, scratch, 1, scratch + 8);
    if (err != ERRNO_SUCCESS) die("cannot read " + path + ": errno " + err.toString());
    const n = <i32>load<u32>(scratch + 8);
    if (n == 0) break;
    length += n;
  }
  fd_close(<u32>fd);
  return Uint8Array.wrap(buffer, 0, length);
}

/** Creates (or truncates) a file and writes `len` bytes at `ptr`; exits with a message when it cannot. */
export function writeFileRaw(path: string, ptr: usize, len: usize): void {
  const fd = openPath(path, OFLAGS_CREAT | OFLAGS_TRUNC, RIGHT_FD_WRITE | RIGHT_FD_SEEK);
  if (fd < 0) die("cannot create " + path + ": errno " + (-fd).toString());
  const err = writeAll(<u32>fd, ptr, len);
  if (err != ERRNO_SUCCESS) die("cannot write " + path + ": errno " + err.toString());
  fd_close(<u32>fd);
}

/** Creates (or truncates) a file with `data`. */
export function writeFile(path: string, data: Uint8Array): void {
  writeFileRaw(path, data.dataStart, <usize>data.byteLength);
}

/** Creates (or truncates) a file with the UTF-8 of `text`. */
export function writeText(path: string, text: string): void {
  const bytes = String.UTF8.encode(text);
  writeFileRaw(path, changetype<usize>(bytes), <usize>bytes.byteLength);
}
