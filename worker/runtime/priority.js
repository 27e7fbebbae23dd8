// @ts-check
/**
 * Run by each sandbox thread script as it starts (plain JavaScript, like them): a thread started for background jobs
 * (thread.ts passes BACKGROUND_ARG in its argv) lowers its own scheduling priority, so that on a machine it shares a
 * hedge replica's run takes only the CPU the other runs leave. Linux keeps the nice value per thread, so only this
 * thread is affected; elsewhere setpriority would lower the whole worker process (its heartbeats, its commits), so
 * nothing is done. A failure (a platform that refuses) is ignored: the run is then merely not deprioritised.
 */
"use strict";

const os = require("node:os");

/** Nice value of a background sandbox thread: it gets about a tenth of the CPU a normal one gets when both want it. */
const BACKGROUND_NICENESS = 10;
const BACKGROUND_ARG = "--concord-background";

/** @returns {number | null} the nice value set, or null when nothing was changed */
function applyThreadPriority() {
  if (!process.argv.includes(BACKGROUND_ARG) || process.platform !== "linux") return null;
  try {
    os.setPriority(BACKGROUND_NICENESS); // pid 0: the calling thread, on Linux
    return BACKGROUND_NICENESS;
  } catch {
    return null;
  }
}

module.exports = { applyThreadPriority, BACKGROUND_NICENESS, BACKGROUND_ARG };
