/**
 * loop (test app): never returns, so a test can check that the runtime's wall-clock deadline stops it. The counter
 * is kept in a global so that the loop has an observable effect and cannot be optimised into something else.
 */
import { eprint } from "../lib/wasi";

let spins: u64 = 0;

eprint("loop: spinning forever");
while (true) {
  spins++;
}
