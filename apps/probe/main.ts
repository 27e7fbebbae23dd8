/**
 * probe (test app): writes to /out/result.json everything a WASI host could leak into a result, so that a test can
 * show the sandbox gives the same answer on every host: argv, the environment, clock_res_get / clock_time_get of the
 * realtime and monotonic clocks (twice each), 16 bytes of random_get, the preopened directories, the fd_readdir
 * listing of /in and of /out (after creating the files c, a, b in /out, in that order) exactly as returned,
 * fd_filestat_get of /in/dataset and of both directories, path_filestat_get of /out/a, and fd_fdstat_get of fds 0..4.
 *
 * Every call that fails is recorded as {"errno":N} instead of stopping the app. 64-bit values are JSON integers.
 */
import { hexBytes, JsonObject, quote, rawArray, stringArray } from "../lib/json";
import {
  args,
  clock_res_get,
  clock_time_get,
  CLOCK_MONOTONIC,
  CLOCK_REALTIME,
  environ,
  fd_close,
  fd_fdstat_get,
  fd_filestat_get,
  fd_readdir,
  openPath,
  path_filestat_get,
  preopenFd,
  preopens,
  random_get,
  resolve,
  RIGHT_FD_FILESTAT_GET,
  RIGHT_FD_READ,
  writeText,
} from "../lib/wasi";

const buf = heap.alloc(64);

function errnoJson(err: u32): string {
  return '{"errno":' + err.toString() + "}";
}

function clockJson(id: u32): string {
  const parts = new Array<string>();
  const err = clock_res_get(id, buf);
  const resolution = err == 0 ? load<u64>(buf).toString() : errnoJson(err);
  for (let k = 0; k < 2; k++) {
    const e = clock_time_get(id, 1, buf);
    parts.push(e == 0 ? load<u64>(buf).toString() : errnoJson(e));
  }
  return new JsonObject().raw("resolution", resolution).raw("times", rawArray(parts)).toString();
}

/** A filestat (64 bytes at `buf`) as JSON, every field kept. */
function filestatJson(): string {
  return new JsonObject()
    .u64("atim", load<u64>(buf, 40))
    .u64("ctim", load<u64>(buf, 56))
    .u64("dev", load<u64>(buf, 0))
    .raw("filetype", load<u8>(buf, 16).toString())
    .u64("ino", load<u64>(buf, 8))
    .u64("mtim", load<u64>(buf, 48))
    .u64("nlink", load<u64>(buf, 24))
    .u64("size", load<u64>(buf, 32))
    .toString();
}

function fdFilestatJson(fd: i32): string {
  if (fd < 0) return errnoJson(<u32>-fd);
  const err = fd_filestat_get(<u32>fd, buf);
  return err == 0 ? filestatJson() : errnoJson(err);
}

function pathFilestatJson(path: string): string {
  const r = resolve(path);
  if (r.dirFd < 0) return errnoJson(44);
  const rel = String.UTF8.encode(r.rel);
  const err = path_filestat_get(<u32>r.dirFd, 0, changetype<usize>(rel), <usize>rel.byteLength, buf);
  return err == 0 ? filestatJson() : errnoJson(err);
}

function fdstatJson(fd: u32): string {
  const err = fd_fdstat_get(fd, buf);
  const o = new JsonObject();
  if (err != 0) return o.raw("errno", err.toString()).raw("fd", fd.toString()).toString();
  return o
    .raw("fd", fd.toString())
    .raw("filetype", load<u8>(buf, 0).toString())
    .raw("flags", load<u16>(buf, 2).toString())
    .u64("rightsBase", load<u64>(buf, 8))
    .u64("rightsInheriting", load<u64>(buf, 16))
    .toString();
}

const DIRENT_SIZE: usize = 24;
const READDIR_BUF: usize = 4096;

/** The fd_readdir listing of a preopened directory, entry by entry as the host returns them. */
function readdirJson(dirName: string): string {
  const fd = preopenFd(dirName);
  if (fd < 0) return errnoJson(8);
  const entries = new Array<string>();
  const dirBuf = heap.alloc(READDIR_BUF);
  let cookie: u64 = 0;
  for (let calls = 0; calls < 1000; calls++) {
    const err = fd_readdir(<u32>fd, dirBuf, READDIR_BUF, cookie, buf);
    if (err != 0) {
      entries.push(errnoJson(err));
      break;
    }
    const used = <usize>load<u32>(buf);
    let at: usize = 0;
    let complete = true;
    while (at + DIRENT_SIZE <= used) {
      const next = load<u64>(dirBuf + at, 0);
      const ino = load<u64>(dirBuf + at, 8);
      const nameLen = <usize>load<u32>(dirBuf + at, 16);
      const type = load<u8>(dirBuf + at, 20);
      if (at + DIRENT_SIZE + nameLen > used) {
        complete = false; // truncated entry: read again from its cookie
        break;
      }
      const name = String.UTF8.decodeUnsafe(dirBuf + at + DIRENT_SIZE, nameLen);
      entries.push(
        new JsonObject().u64("ino", ino).str("name", name).u64("next", next).raw("type", type.toString()).toString(),
      );
      cookie = next;
      at += DIRENT_SIZE + nameLen;
    }
    if (used < READDIR_BUF && complete) break; // the host had nothing more
  }
  return rawArray(entries);
}

// Files created first, in a non-sorted order, so the /out listing shows whether the host sorts entries.
const created = ["c", "a", "b"];
for (let i = 0; i < created.length; i++) writeText("/out/" + created[i], created[i]);

const randomBuf = heap.alloc(16);
const randomErr = random_get(randomBuf, 16);
const randomJson = randomErr == 0 ? quote(hexBytes(randomBuf, 16)) : errnoJson(randomErr);

const datasetFd = openPath("/in/dataset", 0, RIGHT_FD_READ | RIGHT_FD_FILESTAT_GET);
const datasetJson = fdFilestatJson(datasetFd);
if (datasetFd >= 0) fd_close(<u32>datasetFd);

const fdstats = new Array<string>();
for (let fd: u32 = 0; fd <= 4; fd++) fdstats.push(fdstatJson(fd));

const result = new JsonObject()
  .raw("args", stringArray(args()))
  .raw(
    "clocks",
    new JsonObject().raw("monotonic", clockJson(CLOCK_MONOTONIC)).raw("realtime", clockJson(CLOCK_REALTIME)).toString(),
  )
  .raw("dataset", datasetJson)
  .raw(
    "dirs",
    new JsonObject()
      .raw("in", fdFilestatJson(preopenFd("/in")))
      .raw("out", fdFilestatJson(preopenFd("/out")))
      .toString(),
  )
  .raw("env", stringArray(environ()))
  .raw("fdstat", rawArray(fdstats))
  .raw("outFileStat", pathFilestatJson("/out/a"))
  .raw("preopens", stringArray(preopens()))
  .raw("random", randomJson)
  .raw("readdir", new JsonObject().raw("in", readdirJson("/in")).raw("out", readdirJson("/out")).toString());

writeText("/out/result.json", result.toString());
