// @ts-check
/**
 * A thread script for thread.ts's priority tests: applies the sandbox threads' priority rule (priority.js), as the
 * WASI and sql thread scripts do, then answers each job with its thread id and its own nice value.
 */
"use strict";
const { parentPort, threadId } = require("node:worker_threads");
const os = require("node:os");
require("../../worker/runtime/priority.js").applyThreadPriority();

parentPort?.on("message", () => parentPort?.postMessage({ ok: true, value: { threadId, nice: os.getPriority() } }));
