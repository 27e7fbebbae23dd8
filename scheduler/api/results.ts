/**
 * Results by digest: `GET /results/:digest` answers `{digest, kind, files: [{path, size}], storedAt, result}` where
 * `result` is the parsed `result.json` (null when absent or not JSON); `GET /results/:digest/files/<path>` answers the
 * raw bytes of one file. 400 for a malformed digest or path, 404 for an unknown result or file.
 */
import { Router } from "express";
import { ApiError } from "./errors";
import { ResultStoreError, checkResultPath, normaliseDigest } from "./result-store";
import type { ResultStore } from "./result-store";

export interface ResultsRouterModules {
  store: ResultStore;
}

/** Content types by extension; anything else is served as opaque bytes. */
const CONTENT_TYPES: Record<string, string> = {
  json: "application/json",
  txt: "text/plain; charset=utf-8",
  csv: "text/csv; charset=utf-8",
  log: "text/plain; charset=utf-8",
};

function digestParam(raw: string): string {
  try {
    return normaliseDigest(raw);
  } catch (error) {
    if (error instanceof ResultStoreError) throw new ApiError(400, "INVALID_DIGEST", error.message);
    throw error;
  }
}

export function resultsRouter(modules: ResultsRouterModules): Router {
  const { store } = modules;
  const router = Router();

  router.get("/results/:digest", async (req, res) => {
    const digest = digestParam(req.params.digest);
    const stored = await store.get(digest);
    if (!stored) throw new ApiError(404, "RESULT_NOT_FOUND", `no result ${digest} stored here`);
    // `result` is spliced in as canonical JSON text, so integers beyond 2^53 reach the client exact.
    const result = await store.resultJson(digest);
    const head = JSON.stringify({ digest: stored.digest, kind: stored.kind, files: stored.files, storedAt: stored.storedAt });
    res.status(200).type("application/json").send(`${head.slice(0, -1)},"result":${result ?? "null"}}`);
  });

  router.get("/results/:digest/files/*path", async (req, res) => {
    const digest = digestParam(req.params.digest);
    const segments = (req.params as unknown as { path: string[] | string }).path;
    const path = Array.isArray(segments) ? segments.join("/") : segments;
    try {
      checkResultPath(path);
    } catch (error) {
      if (error instanceof ResultStoreError) throw new ApiError(400, error.code, error.message);
      throw error;
    }
    const bytes = await store.readFile(digest, path);
    if (!bytes) throw new ApiError(404, "FILE_NOT_FOUND", `no file ${JSON.stringify(path)} in result ${digest}`);
    const extension = /\.([A-Za-z0-9]+)$/.exec(path)?.[1]?.toLowerCase() ?? "";
    res.status(200);
    res.setHeader("content-type", CONTENT_TYPES[extension] ?? "application/octet-stream");
    res.setHeader("x-content-type-options", "nosniff");
    res.setHeader("content-disposition", "inline");
    res.send(bytes);
  });

  return router;
}
