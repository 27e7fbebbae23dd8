// @ts-check
/**
 * A thread script for thread.ts's tests: answers each job `{ fail?: boolean, sleepMs?: number }` with its thread id
 * and how many jobs this thread has taken, or with a failure when asked to.
 */
"use strict";
const { parentPort, threadId } = require("node:worker_threads");

let jobs = 0;
parentPort?.on("message", (/** @type {{ fail?: boolean, sleepMs?: number }} */ job) => {
  jobs++;
  const answer = () =>
    parentPort?.postMessage(job.fail ? { ok: false, code: "NON_ZERO_EXIT", message: "asked to fail" } : { ok: true, value: { threadId, jobs } });
  if (job.sleepMs) setTimeout(answer, job.sleepMs);
  else answer();
});
