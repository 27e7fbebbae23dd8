/**
 * HTTP errors of the scheduler's API: handlers throw `ApiError(status, code, message)`; one error-handling middleware
 * turns it (and express's own body-parser errors, and anything unexpected) into `{error: {code, message}}` with a
 * one-line message. `concord order publish` shows `error.message` to the user as is, so messages name the field or
 * the on-chain reason, never a stack.
 */
import type { ErrorRequestHandler, RequestHandler, Response } from "express";
import type { Logger } from "pino";

export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(oneLine(message));
  }
}

/** Messages travel in one line (a multi-line message would break the CLI's single error line). */
export function oneLine(text: string, max = 500): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}

/** JSON with bigints as decimal strings (orders, deals and tasks carry uint256 values). */
export function sendJson(res: Response, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_key, value: unknown) => (typeof value === "bigint" ? value.toString(10) : value));
  res.status(status).type("application/json").send(text);
}

/** body-parser tags its errors with a `type`; each maps to a status and a code of ours. */
const BODY_ERRORS: Record<string, { status: number; code: string; message: (e: BodyParserError) => string }> = {
  "entity.parse.failed": { status: 400, code: "INVALID_JSON", message: (e) => `the body is not valid JSON: ${e.message}` },
  "entity.too.large": {
    status: 413,
    code: "BODY_TOO_LARGE",
    message: (e) => `the body is larger than the limit of ${e.limit ?? "?"} bytes`,
  },
  "encoding.unsupported": { status: 415, code: "UNSUPPORTED_ENCODING", message: (e) => e.message },
  "charset.unsupported": { status: 415, code: "UNSUPPORTED_CHARSET", message: (e) => e.message },
  "request.aborted": { status: 400, code: "REQUEST_ABORTED", message: () => "the request was aborted" },
  "request.size.invalid": { status: 400, code: "INVALID_BODY_SIZE", message: () => "the body size does not match Content-Length" },
  "stream.encoding.set": { status: 500, code: "INTERNAL", message: () => "internal error" },
};

interface BodyParserError {
  type?: string;
  message: string;
  limit?: number;
  status?: number;
  statusCode?: number;
  expose?: boolean;
}

/** The `{status, code, message}` an error becomes. Unknown errors are 500s with a generic message (logged). */
export function describeError(error: unknown): { status: number; code: string; message: string; unexpected: boolean } {
  if (error instanceof ApiError) return { status: error.status, code: error.code, message: error.message, unexpected: false };
  const e = error as BodyParserError | null;
  if (e && typeof e === "object" && typeof e.type === "string" && BODY_ERRORS[e.type]) {
    const known = BODY_ERRORS[e.type];
    return { status: known.status, code: known.code, message: oneLine(known.message(e)), unexpected: known.status >= 500 };
  }
  const status = e && typeof e === "object" ? (e.status ?? e.statusCode) : undefined;
  if (typeof status === "number" && status >= 400 && status < 500 && e?.expose !== false) {
    return { status, code: "BAD_REQUEST", message: oneLine(e!.message || "bad request"), unexpected: false };
  }
  return { status: 500, code: "INTERNAL", message: "internal error", unexpected: true };
}

/** The last middleware of the app: every error becomes `{error: {code, message}}`. */
export function errorHandler(logger?: Logger): ErrorRequestHandler {
  return (error, req, res, next) => {
    if (res.headersSent) return next(error);
    const { status, code, message, unexpected } = describeError(error);
    if (unexpected) logger?.error({ err: error, method: req.method, path: req.path }, "request failed");
    else logger?.debug({ status, code, method: req.method, path: req.path }, message);
    sendJson(res, status, { error: { code, message } });
  };
}

/** 404 for every route no router answered. */
export const notFound: RequestHandler = (req, _res, next) => {
  next(new ApiError(404, "NOT_FOUND", `no route ${req.method} ${req.path}`));
};
