/**
 * A small seeded random generator for the replica choice's random tail. Passed in rather than using Math.random so
 * that tests are deterministic and a choice can be replayed from its seed (e.g. the task id) when auditing.
 */

/** Returns a float in [0, 1). */
export type Rng = () => number;

/** FNV-1a 32-bit hash of a string, to turn a text seed (a task id) into a number seed. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: tiny, fast, good enough statistically for load spreading (not for cryptography). */
export function seededRng(seed: number | string): Rng {
  let a = (typeof seed === "string" ? fnv1a(seed) : seed) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
