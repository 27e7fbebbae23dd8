/**
 * wordcount: reads /in/dataset (any text) and writes /out/result.json =
 *   {"bytes":N,"lines":N,"top":[[word,count],...],"words":N}
 * - bytes: the file's size;
 * - lines: the number of lines, the last one counted even without a final "\n" (so "a\nb" has 2, "a\n" has 1);
 * - words: maximal runs of ASCII letters and digits, lower-cased (every other byte, UTF-8 included, separates words);
 * - top: up to 10 distinct words, by count descending then word ascending.
 *
 * Words are counted in one pass over the bytes with an open-addressing hash table that points into the (lower-cased
 * in place) input, so memory stays about the size of the dataset and no string is made until the top 10 is known.
 */
import { quote, rawArray } from "../lib/json";
import { readFile, writeText } from "../lib/wasi";

const TOP = 10;

// The table, as parallel arrays (module globals: AssemblyScript has no closures).
let slotCap: u32 = 0; // a power of two
let slotUsed: u32 = 0;
let slotStart: StaticArray<u32> = new StaticArray<u32>(0);
let slotLen: StaticArray<u32> = new StaticArray<u32>(0);
let slotCount: StaticArray<u32> = new StaticArray<u32>(0); // 0 = empty slot
let slotHash: StaticArray<u32> = new StaticArray<u32>(0);
let text: usize = 0; // start of the lower-cased input

function allocTable(cap: u32): void {
  slotCap = cap;
  slotStart = new StaticArray<u32>(cap);
  slotLen = new StaticArray<u32>(cap);
  slotCount = new StaticArray<u32>(cap);
  slotHash = new StaticArray<u32>(cap);
}

/** FNV-1a over the word's bytes. */
function hashOf(start: u32, len: u32): u32 {
  let h: u32 = 2166136261;
  for (let i: u32 = 0; i < len; i++) {
    h ^= <u32>load<u8>(text + <usize>(start + i));
    h *= 16777619;
  }
  return h;
}

function sameWord(slot: u32, start: u32, len: u32): bool {
  return (
    unchecked(slotLen[slot]) == len &&
    memory.compare(text + <usize>unchecked(slotStart[slot]), text + <usize>start, <usize>len) == 0
  );
}

function grow(): void {
  const oldCap = slotCap;
  const oldStart = slotStart;
  const oldLen = slotLen;
  const oldCount = slotCount;
  const oldHash = slotHash;
  allocTable(oldCap << 1);
  const mask = slotCap - 1;
  for (let i: u32 = 0; i < oldCap; i++) {
    const count = unchecked(oldCount[i]);
    if (count == 0) continue;
    const h = unchecked(oldHash[i]);
    let s = h & mask;
    while (unchecked(slotCount[s]) != 0) s = (s + 1) & mask;
    unchecked((slotStart[s] = oldStart[i]));
    unchecked((slotLen[s] = oldLen[i]));
    unchecked((slotCount[s] = count));
    unchecked((slotHash[s] = h));
  }
}

function countWord(start: u32, len: u32): void {
  const h = hashOf(start, len);
  const mask = slotCap - 1;
  let s = h & mask;
  while (true) {
    const count = unchecked(slotCount[s]);
    if (count == 0) break;
    if (unchecked(slotHash[s]) == h && sameWord(s, start, len)) {
      unchecked((slotCount[s] = count + 1));
      return;
    }
    s = (s + 1) & mask;
  }
  unchecked((slotStart[s] = start));
  unchecked((slotLen[s] = len));
  unchecked((slotCount[s] = 1));
  unchecked((slotHash[s] = h));
  slotUsed++;
  if (slotUsed * 2 > slotCap) grow();
}

/** True when the word in slot `a` ranks before the word in slot `b`: count descending, then bytes ascending. */
function ranksBefore(a: u32, b: u32): bool {
  const ca = unchecked(slotCount[a]);
  const cb = unchecked(slotCount[b]);
  if (ca != cb) return ca > cb;
  const la = unchecked(slotLen[a]);
  const lb = unchecked(slotLen[b]);
  const common = la < lb ? la : lb;
  const cmp = memory.compare(
    text + <usize>unchecked(slotStart[a]),
    text + <usize>unchecked(slotStart[b]),
    <usize>common,
  );
  if (cmp != 0) return cmp < 0;
  return la < lb;
}

@inline function isWordByte(c: u32): bool {
  return (c - 0x30 < 10) | ((c | 0x20) - 0x61 < 26);
}

const data = readFile("/in/dataset");
const size = <u32>data.byteLength;
text = data.dataStart;
allocTable(1024);

let lines: u32 = 0;
let words: u32 = 0;
let wordStart: i32 = -1;
for (let i: u32 = 0; i < size; i++) {
  const p = text + <usize>i;
  const c = <u32>load<u8>(p);
  if (c == 0x0a) lines++;
  if (isWordByte(c)) {
    if (c - 0x41 < 26) store<u8>(p, <u8>(c | 0x20)); // lower-case in place
    if (wordStart < 0) wordStart = <i32>i;
  } else if (wordStart >= 0) {
    countWord(<u32>wordStart, i - <u32>wordStart);
    words++;
    wordStart = -1;
  }
}
if (wordStart >= 0) {
  countWord(<u32>wordStart, size - <u32>wordStart);
  words++;
}
if (size > 0 && load<u8>(text + <usize>(size - 1)) != 0x0a) lines++;

// Top 10 by insertion into a short sorted list: O(distinct words × 10), no sort of the whole table.
const top = new Array<u32>();
for (let s: u32 = 0; s < slotCap; s++) {
  if (unchecked(slotCount[s]) == 0) continue;
  if (top.length == TOP && !ranksBefore(s, top[TOP - 1])) continue;
  let at = top.length;
  while (at > 0 && ranksBefore(s, top[at - 1])) at--;
  top.push(0);
  for (let k = top.length - 1; k > at; k--) top[k] = top[k - 1];
  top[at] = s;
  if (top.length > TOP) top.pop();
}

const entries = new Array<string>(top.length);
for (let k = 0; k < top.length; k++) {
  const s = top[k];
  const word = String.UTF8.decodeUnsafe(text + <usize>slotStart[s], <usize>slotLen[s]);
  entries[k] = "[" + quote(word) + "," + slotCount[s].toString() + "]";
}

writeText(
  "/out/result.json",
  '{"bytes":' +
    size.toString() +
    ',"lines":' +
    lines.toString() +
    ',"top":' +
    rawArray(entries) +
    ',"words":' +
    words.toString() +
    "}",
);
