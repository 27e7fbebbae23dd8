/**
 * `concord verify-determinism <app>`: runs the app twice, in two separate processes whose time zone, locale, working
 * directory and environment all differ, and compares the result digests. Equal digests mean workers on different
 * hosts agree; different digests (or an app the runtime refuses as non-deterministic) fail with exit code 1 and name
 * the files that differ.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import type { Command } from "commander";
import type { Wrap } from "./command";
import { CliError } from "./errors";
import { paramsOf, runOptions, type RunLocalOptions } from "./run-local";

const BIN = join(__dirname, "..", "..", "bin", "concord");

/** Two hosts as different as one machine can make them. */
export const HOSTS: Record<string, string>[] = [
  { TZ: "Pacific/Kiritimati", LANG: "tr_TR.UTF-8", LC_ALL: "tr_TR.UTF-8", CONCORD_PROBE: "first", HOME: "/root" },
  { TZ: "America/St_Johns", LANG: "ja_JP.EUC-JP", LC_ALL: "C", CONCORD_PROBE: "second-host", EXTRA_VARIABLE: "x".repeat(100) },
];

interface RunReport {
  digest: string;
  files: { path: string; size: number; digest: string }[];
}

function runIn(host: Record<string, string>, cwd: string, argv: string[]): Promise<RunReport> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "", ...host };
  return new Promise((done, fail) => {
    execFile(process.execPath, [BIN, ...argv], { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        const line = stderr.trim().split("\n").pop()?.replace(/^concord: /, "") || error.message;
        // The runtime refuses what it can prove non-deterministic (host clock imports, random() in SQL) before running.
        if (/non-deterministic|non-verifiable/.test(line)) return fail(new CliError("INVALID_INPUT", `NOT deterministic: ${line}`));
        return fail(new CliError("INVALID_INPUT", `run under TZ=${host.TZ} failed: ${line}`));
      }
      done(JSON.parse(stdout) as RunReport);
    });
  });
}

export function registerVerifyCommand(program: Command, wrap: Wrap): void {
  runOptions(
    program
      .command("verify-determinism")
      .argument("<app>", "a WebAssembly file (path or file:// URI), or sql")
      .description("run an app twice in processes with different time zones, locales and environments and compare digests"),
  ).action(
    wrap<RunLocalOptions>(async (ctx, args, options) => {
      const abs = (p: string) => (p.startsWith("file:") || isAbsolute(p) ? p : resolve(p));
      const app = args[0] as string;
      const argv = ["run-local", app === "sql" ? app : abs(app), "--json", "--params", paramsOf(options), "--seed", options.seed];
      argv.push("--timeout", options.timeout, "--memory", options.memory);
      if (options.dataset) argv.push("--dataset", abs(options.dataset));
      if (options.datasetName) argv.push("--dataset-name", options.datasetName);
      if (options.checksum) argv.push("--checksum", options.checksum);
      const dirs = await Promise.all(HOSTS.map(() => mkdtemp(join(tmpdir(), "concord-verify-"))));
      try {
        const reports = await Promise.all(HOSTS.map((host, i) => runIn(host, dirs[i], argv)));
        const [a, b] = reports;
        const runs = reports.map((r, i) => ({ tz: HOSTS[i].TZ, lang: HOSTS[i].LANG, digest: r.digest }));
        if (a.digest !== b.digest) {
          const differ = [...new Set([...a.files, ...b.files].map((f) => f.path))].filter(
            (p) => a.files.find((f) => f.path === p)?.digest !== b.files.find((f) => f.path === p)?.digest,
          );
          throw new CliError(
            "INVALID_INPUT",
            `NOT deterministic: ${runs.map((r) => `${r.tz} gave ${r.digest}`).join(", ")}; differing files: ${differ.join(", ") || "(none)"}`,
          );
        }
        ctx.print({ deterministic: true, digest: a.digest, runs }, () => [
          `deterministic: ${runs.length} runs in separate processes gave ${a.digest}`,
          ...runs.map((r) => `  TZ=${r.tz} LANG=${r.lang}`),
        ]);
      } finally {
        await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
      }
    }),
  );
}
