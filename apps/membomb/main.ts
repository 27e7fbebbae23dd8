/**
 * membomb (test app): grows its linear memory 1 MiB at a time (then page by page once that is refused), writing to
 * every 4 KiB of each new page so the host must really commit it, until memory.grow fails (at the runtime's memory limit, else at the 4 GiB wasm32
 * ceiling); then it traps. A runtime that enforces its memory limit reports a memory error instead of letting it
 * take many GiB.
 */
import { eprint } from "../lib/wasi";

const PAGE: usize = 65536;
const OS_PAGE: usize = 4096;

eprint("membomb: growing memory until refused");
let step = 16; // pages: 1 MiB
while (true) {
  const first = memory.grow(step);
  if (first < 0) {
    if (step == 1) break;
    step = 1; // near the limit: take what is left page by page
    continue;
  }
  const start = <usize>first * PAGE;
  const end = start + <usize>step * PAGE;
  for (let at = start; at < end; at += OS_PAGE) store<u8>(at, 1); // commit every OS page
}
eprint("membomb: memory.grow refused, trapping");
unreachable();
