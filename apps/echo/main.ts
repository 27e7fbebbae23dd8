/**
 * echo: the smallest useful app. Writes its arguments to /out/result.json as {"args":[...]}, prints them on stdout,
 * and writes /out/callback-data = the UTF-8 of the arguments joined by one space (the raw bytes a callback deal
 * hands to the requester's contract).
 */
import { args, print, writeText } from "../lib/wasi";
import { JsonObject, stringArray } from "../lib/json";

const argv = args();
const given = argv.length > 1 ? argv.slice(1) : new Array<string>();
const joined = given.join(" ");

print(joined);
writeText("/out/result.json", new JsonObject().raw("args", stringArray(given)).toString());
writeText("/out/callback-data", joined);
