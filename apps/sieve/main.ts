/**
 * sieve: the CPU-heavy app for benchmarks. Counts the primes ≤ N with a sieve of Eratosthenes over a bitset of the
 * odd numbers and writes /out/result.json = {"largest":p,"n":N,"primes":count} (largest is null when N < 2).
 *
 * Arguments: `--n N` (default 1000000, 0..200000000) and `--rounds R` (default 1, 1..10000): the sieve is run R
 * times (same result) so that a benchmark can scale the CPU time without changing the memory. `--name=value` also
 * works. Bad arguments are refused with a message on stderr and exit code 2.
 */
import { JsonObject } from "../lib/json";
import { args, die, writeText } from "../lib/wasi";

const DEFAULT_N: u32 = 1000000;
const MAX_N: u32 = 200000000;
const DEFAULT_ROUNDS: u32 = 1;
const MAX_ROUNDS: u32 = 10000;
const USAGE = "usage: sieve [--n N (0.." + MAX_N.toString() + ")] [--rounds R (1.." + MAX_ROUNDS.toString() + ")]";

function refuse(message: string): void {
  die("sieve: " + message + "\n" + USAGE, 2);
}

/** A decimal integer in [min, max], or refuses the arguments. */
function parseBounded(name: string, text: string, min: u32, max: u32): u32 {
  if (text.length == 0 || text.length > 10) refuse(name + " must be an integer, got '" + text + "'");
  let value: u64 = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) refuse(name + " must be an integer, got '" + text + "'");
    value = value * 10 + <u64>(c - 0x30);
  }
  if (value < <u64>min || value > <u64>max) {
    refuse(name + " must be in " + min.toString() + ".." + max.toString() + ", got " + text);
  }
  return <u32>value;
}

let n = DEFAULT_N;
let rounds = DEFAULT_ROUNDS;
const argv = args();
for (let i = 1; i < argv.length; i++) {
  let name = argv[i];
  let value: string | null = null;
  const eq = name.indexOf("=");
  if (name.startsWith("--") && eq > 0) {
    value = name.substring(eq + 1);
    name = name.substring(0, eq);
  }
  if (name != "--n" && name != "--rounds") refuse("unknown argument '" + argv[i] + "'");
  if (value === null) {
    if (i + 1 >= argv.length) refuse(name + " needs a value");
    value = argv[++i];
  }
  if (name == "--n") n = parseBounded("--n", value, 0, MAX_N);
  else rounds = parseBounded("--rounds", value, 1, MAX_ROUNDS);
}

// Bit i stands for the odd number 2i+1; a set bit means "composite" (bit 0, the number 1, is set by hand).
const odds: u32 = (n + 1) >> 1; // odd numbers in 1..n
const words: u32 = (odds + 63) >> 6;
const bits = heap.alloc((<usize>words) << 3);

/** Sieves once; returns the number of primes ≤ n. */
function sieveOnce(): u32 {
  memory.fill(bits, 0, (<usize>words) << 3);
  if (odds == 0) return 0;
  store<u8>(bits, load<u8>(bits) | 1);
  for (let i: u32 = 1; ; i++) {
    const p = 2 * i + 1;
    const square = <u64>p * p;
    if (square > <u64>n) break;
    if ((load<u8>(bits + (i >> 3)) >> (i & 7)) & 1) continue;
    for (let j = <u32>((square - 1) >> 1); j < odds; j += p) {
      const at = bits + (j >> 3);
      const bit: u32 = 1 << (j & 7);
      store<u8>(at, (<u32>load<u8>(at)) | bit);
    }
  }
  // bits beyond `odds` in the last word are zero: count the set bits below `odds` and take the rest as primes
  let composite: u32 = 0;
  for (let w: u32 = 0; w < words; w++) composite += <u32>popcnt<u64>(load<u64>(bits + ((<usize>w) << 3)));
  return odds - composite + (n >= 2 ? 1 : 0); // + the prime 2
}

/** The largest prime ≤ n after a sieve, or 0 when n < 2. */
function largestPrime(): u32 {
  if (n < 2) return 0;
  for (let i = <i32>odds - 1; i >= 1; i--) {
    if (((load<u8>(bits + ((<usize>i) >> 3)) >> ((<u8>i) & 7)) & 1) == 0) return 2 * <u32>i + 1;
  }
  return 2;
}

let primes: u32 = 0;
for (let r: u32 = 0; r < rounds; r++) {
  const count = sieveOnce();
  if (r > 0 && count != primes) die("sieve: round " + r.toString() + " disagrees with round 0");
  primes = count;
}
const largest = largestPrime();

writeText(
  "/out/result.json",
  new JsonObject()
    .raw("largest", largest == 0 ? "null" : largest.toString())
    .raw("n", n.toString())
    .raw("primes", primes.toString())
    .toString(),
);
