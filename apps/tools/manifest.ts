/**
 * The example apps, their build flags and the expected shape of their imports. One list shared by the build script
 * (apps/build.ts) and the tests, so that adding an app is one line here plus its `apps/<name>/main.ts`.
 */

/** Every import of a deterministic app must come from this module (the runtime refuses any other). */
export const WASI_MODULE = "wasi_snapshot_preview1";

export interface AppSpec {
  /** also the directory of its source (`apps/<name>/main.ts`) and its output (`apps/build/<name>.wasm`) */
  readonly name: string;
  /** false only for `nondet`, which imports the host's clock and entropy on purpose */
  readonly deterministic: boolean;
  /** a test-only abuse app (never registered for real deals) */
  readonly testOnly: boolean;
}

export const APPS: readonly AppSpec[] = [
  { name: "echo", deterministic: true, testOnly: false },
  { name: "wordcount", deterministic: true, testOnly: false },
  { name: "sieve", deterministic: true, testOnly: false },
  { name: "nondet", deterministic: false, testOnly: false },
  { name: "loop", deterministic: true, testOnly: true },
  { name: "membomb", deterministic: true, testOnly: true },
  { name: "bigout", deterministic: true, testOnly: true },
  { name: "exitcode", deterministic: true, testOnly: true },
  { name: "probe", deterministic: true, testOnly: true },
  { name: "writein", deterministic: true, testOnly: true },
];

/**
 * asc flags shared by every app: a WASI *command* (`_start` exported instead of a wasm start section, so the host
 * calls it after wiring its imports), the stub runtime (a bump allocator, no GC: apps are short-lived and allocate
 * little), and our own WASI-based `abort` so that no `env.abort` import appears. Assertions are kept.
 */
export const ASC_FLAGS: readonly string[] = [
  "--optimizeLevel",
  "3",
  "--shrinkLevel",
  "1",
  "--runtime",
  "stub",
  "--exportStart",
  "_start",
  "--use",
  "abort=wasiAbort",
  "--noColors",
];
