/**
 * writein (test app): tries to change the read-only input directory and reports the WASI errno of every attempt in
 * /out/result.json instead of trapping (0 means the host allowed it):
 *   {"createFile":e,"mkdir":e,"openDatasetForWrite":e,"unlinkDataset":e,"writeCreated":e,"writeDataset":e}
 * A write step whose open failed reports the open's errno. A sandbox that keeps /in read-only answers non-zero
 * everywhere and leaves /in/dataset unchanged.
 */
import { JsonObject } from "../lib/json";
import {
  fd_close,
  OFLAGS_CREAT,
  OFLAGS_EXCL,
  openPath,
  path_create_directory,
  path_unlink_file,
  resolve,
  RIGHT_FD_WRITE,
  writeAll,
  writeText,
} from "../lib/wasi";

const PAYLOAD = "written by writein\n";

/** Writes PAYLOAD to an fd (or passes on the open's errno when `fd` is negative) and closes it. */
function writePayload(fd: i32): u32 {
  if (fd < 0) return <u32>-fd;
  const bytes = String.UTF8.encode(PAYLOAD);
  const err = writeAll(<u32>fd, changetype<usize>(bytes), <usize>bytes.byteLength);
  fd_close(<u32>fd);
  return err;
}

/** Applies a path call (unlink, mkdir) to an absolute path below a preopen; returns its errno. */
function pathCall(path: string, mkdir: bool): u32 {
  const r = resolve(path);
  if (r.dirFd < 0) return 44; // ENOENT: no such preopen
  const rel = String.UTF8.encode(r.rel);
  const ptr = changetype<usize>(rel);
  const len = <usize>rel.byteLength;
  return mkdir ? path_create_directory(<u32>r.dirFd, ptr, len) : path_unlink_file(<u32>r.dirFd, ptr, len);
}

const created = openPath("/in/intruder.txt", OFLAGS_CREAT | OFLAGS_EXCL, RIGHT_FD_WRITE);
const createErr: u32 = created < 0 ? <u32>-created : 0;
const writeCreatedErr = writePayload(created);

const dataset = openPath("/in/dataset", 0, RIGHT_FD_WRITE);
const openDatasetErr: u32 = dataset < 0 ? <u32>-dataset : 0;
const writeDatasetErr = writePayload(dataset);

const unlinkErr = pathCall("/in/dataset", false);
const mkdirErr = pathCall("/in/intruder-dir", true);

writeText(
  "/out/result.json",
  new JsonObject()
    .raw("createFile", createErr.toString())
    .raw("mkdir", mkdirErr.toString())
    .raw("openDatasetForWrite", openDatasetErr.toString())
    .raw("unlinkDataset", unlinkErr.toString())
    .raw("writeCreated", writeCreatedErr.toString())
    .raw("writeDataset", writeDatasetErr.toString())
    .toString(),
);
