/**
 * Compiles one AssemblyScript app to a WebAssembly module in memory, through asc's programmatic API.
 *
 * `assemblyscript/dist/asc.js` is an ES module with top-level await, so CommonJS (our ts-node setup) can neither
 * `require` it nor use a TypeScript `import()` (which compiles to `require`). A real dynamic `import()` is kept out
 * of TypeScript's reach in a `new Function`.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ASC_FLAGS, AppSpec } from "./manifest";

/** The part of asc's API we use (its own .d.ts is not importable from CommonJS). */
interface AscApi {
  version: string;
  main(
    argv: string[],
    options: { writeFile: (name: string, contents: Uint8Array | string, baseDir: string) => void },
  ): Promise<{ error: Error | null; stderr: { toString(): string } }>;
}

export class CompileError extends Error {
  readonly code = "COMPILE_FAILED";
  constructor(message: string) {
    super(message);
    this.name = "CompileError";
  }
}

const importEsm = new Function("specifier", "return import(specifier)") as (specifier: string) => Promise<AscApi>;

let ascPromise: Promise<AscApi> | undefined;

/** Loads the compiler once per process. */
export function loadAsc(): Promise<AscApi> {
  ascPromise ??= importEsm(pathToFileURL(require.resolve("assemblyscript/dist/asc.js")).href);
  return ascPromise;
}

/** Builds `apps/<name>/main.ts` (relative to `appsDir`) and returns the module's bytes. */
export async function compileApp(appsDir: string, app: AppSpec): Promise<Uint8Array<ArrayBuffer>> {
  const asc = await loadAsc();
  const outName = `${app.name}.wasm`;
  let binary: Uint8Array | undefined;
  const argv = [join(app.name, "main.ts"), "--baseDir", appsDir, "--outFile", outName, ...ASC_FLAGS];
  const result = await asc.main(argv, {
    writeFile(name, contents) {
      if (name === outName && typeof contents !== "string") binary = contents;
    },
  });
  if (result.error) {
    const detail = result.stderr.toString().trim().split("\n").slice(0, 20).join("\n");
    throw new CompileError(`asc failed on ${app.name}: ${result.error.message}\n${detail}`);
  }
  if (!binary) throw new CompileError(`asc produced no module for ${app.name}`);
  return new Uint8Array(binary); // a copy on a plain ArrayBuffer, as WebAssembly.Module wants
}
