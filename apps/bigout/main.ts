/**
 * bigout (test app): writes an unbounded stream of 1 MiB chunks to /out/big.bin, so a test can check that the
 * runtime's output limit stops it. If the host refuses a write it exits 1 with the errno on stderr.
 */
import { die, eprint, openPath, OFLAGS_CREAT, OFLAGS_TRUNC, RIGHT_FD_WRITE, writeAll } from "../lib/wasi";

const CHUNK: usize = 1 << 20;

const chunk = heap.alloc(CHUNK);
for (let i: usize = 0; i < CHUNK; i++) store<u8>(chunk + i, <u8>(0x61 + (i % 26))); // "abc…z" repeated

const fd = openPath("/out/big.bin", OFLAGS_CREAT | OFLAGS_TRUNC, RIGHT_FD_WRITE);
if (fd < 0) die("bigout: cannot create /out/big.bin: errno " + (-fd).toString());
eprint("bigout: writing 1 MiB chunks forever");
let chunks: u64 = 0;
while (true) {
  const err = writeAll(<u32>fd, chunk, CHUNK);
  if (err != 0) die("bigout: write refused after " + chunks.toString() + " MiB: errno " + err.toString());
  chunks++;
}
