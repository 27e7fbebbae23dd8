/**
 * exitcode (test app): prints a line on stderr and exits with the code given as argv[1] (default 3), so a test can
 * check how the runtime reports a failed run. A code that is not an integer in 0..255 is refused with exit code 2.
 */
import { args, die, eprint, exit } from "../lib/wasi";

const DEFAULT_CODE: u32 = 3;

function parseCode(text: string): i32 {
  if (text.length == 0 || text.length > 3) return -1;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    value = value * 10 + (c - 0x30);
  }
  return value <= 255 ? value : -1;
}

const argv = args();
let code = DEFAULT_CODE;
if (argv.length > 1) {
  const parsed = parseCode(argv[1]);
  if (parsed < 0) die("exitcode: the exit code must be an integer in 0..255, got " + argv[1], 2);
  code = <u32>parsed;
}
eprint("exitcode: exiting with code " + code.toString());
exit(code);
