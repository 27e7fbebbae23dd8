/**
 * The request order's `params` string, as the runtimes read it (docs/apps.md):
 * - empty: no arguments;
 * - otherwise one JSON object, with only these members:
 *   - `args`: array of strings, the WASI app's arguments (argv[1..]); at most MAX_ARGS, each at most MAX_ARG_BYTES
 *     bytes of UTF-8 and without NUL;
 *   - `query`: string, the SQL query of the `sql` runtime.
 * Anything else is refused with a one-line `ParamsError` naming the problem, so a requester learns it before paying.
 */
import { z } from "zod";

export const MAX_ARGS = 64;
export const MAX_ARG_BYTES = 4096;
export const MAX_QUERY_BYTES = 16_384;

export interface Params {
  args: string[];
  query?: string;
}

export class ParamsError extends Error {
  override readonly name = "ParamsError";
}

const utf8Length = (s: string): number => Buffer.byteLength(s, "utf8");

const ParamsSchema = z
  .object({
    args: z
      .array(
        z
          .string({ invalid_type_error: "must be a string" })
          .refine((s) => !s.includes("\0"), "must not contain NUL")
          .refine((s) => utf8Length(s) <= MAX_ARG_BYTES, `must be at most ${MAX_ARG_BYTES} bytes`),
        { invalid_type_error: "must be an array of strings" },
      )
      .max(MAX_ARGS, `must have at most ${MAX_ARGS} items`)
      .optional(),
    query: z
      .string({ invalid_type_error: "must be a string" })
      .refine((s) => s.trim() !== "", "must not be empty")
      .refine((s) => utf8Length(s) <= MAX_QUERY_BYTES, `must be at most ${MAX_QUERY_BYTES} bytes`)
      .optional(),
  })
  .strict();

/** Parses a request's params; throws `ParamsError` with one clear line. */
export function parseParams(text: string): Params {
  if (text.trim() === "") return { args: [] };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ParamsError('params: not JSON; expected an object such as {"args":["--n","1000"]} or {"query":"SELECT …"}');
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new ParamsError("params: expected a JSON object with `args` and/or `query`");
  }
  const parsed = ParamsSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length ? issue.path.join(".") : "params";
    const what =
      issue.code === "unrecognized_keys" ? `unknown member(s) ${issue.keys.join(", ")} (allowed: args, query)` : issue.message;
    throw new ParamsError(`params: ${where === "params" ? "" : where + " "}${what}`);
  }
  return { args: parsed.data.args ?? [], ...(parsed.data.query !== undefined ? { query: parsed.data.query } : {}) };
}

/** The params string for the given arguments and/or query (what `concord` puts in a request order). */
export function formatParams(p: Partial<Params>): string {
  const out: Record<string, unknown> = {};
  if (p.args && p.args.length) out.args = p.args;
  if (p.query !== undefined) out.query = p.query;
  return Object.keys(out).length ? JSON.stringify(out) : "";
}
