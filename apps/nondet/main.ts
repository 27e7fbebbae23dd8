/**
 * nondet: the naive non-deterministic app. It calls AssemblyScript's plain `Date.now()` and `Math.random()`, which
 * import the host's clock and entropy from `env` ("Date.now" and "seed"). Two workers would never agree on its
 * result, so the runtime refuses it at load time (NON_DETERMINISTIC_IMPORT): that is the point of this app. A
 * deterministic app reads the clock and randomness through WASI, which the runtime makes deterministic.
 */
import { JsonObject } from "../lib/json";
import { writeText } from "../lib/wasi";

const now = Date.now();
const random = Math.random();
writeText("/out/result.json", new JsonObject().i64("now", now).raw("random", random.toString()).toString());
