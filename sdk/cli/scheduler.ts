/**
 * `concord scheduler start`: runs the scheduler daemon (scheduler/index.ts) for one pool until SIGINT or SIGTERM.
 * The key is the pool's scheduler (it signs the pool's workerpool order, so it must also own the pool). stdout gets
 * one line when it is ready (`--json`: one object with its URLs); the daemon's logs (pino JSON) go to stderr.
 */
import { Option } from "commander";
import type { Command } from "commander";
import type { Wrap } from "./command";
import { CliError } from "./errors";
import { parseAmount } from "./amounts";
import { untilSignal } from "./worker";
import { Scheduler, defaultSchedulerOptions } from "../../scheduler";

interface StartOptions {
  workerpool: string;
  host: string;
  port: string;
  dataDir: string;
  price: string;
  wei?: boolean;
  trust: string;
  category: string;
  offerVolume: string;
  policy: "fixed" | "adaptive";
  extra: string;
  commitMode: "relay" | "direct";
  logLevel: string;
}

const uint = (text: string, what: string): bigint => {
  if (!/^\d{1,18}$/.test(text.trim())) throw new CliError("USAGE", `${what}: expected a non-negative integer, got "${text}"`);
  return BigInt(text.trim());
};

export function registerSchedulerCommands(program: Command, wrap: Wrap): void {
  const scheduler = program.command("scheduler").description("the scheduler daemon: order book, worker sessions, hedged tasks");
  scheduler
    .command("start")
    .description("serve a pool: match requests, dispatch tasks to workers, finalize results, until SIGINT/SIGTERM")
    .requiredOption("--workerpool <id>", "the pool to serve (the key must be its scheduler and owner)")
    .option("--host <host>", "listen address (keep loopback unless a proxy fronts it)", "127.0.0.1")
    .option("--port <port>", "HTTP + WebSocket port (0: any free port)", "8080")
    .requiredOption("--data-dir <dir>", "state: SQLite database and stored results")
    .option("--price <amount>", "the pool's price per task (token units)", "0")
    .option("--wei", "--price is in base units")
    .option("--trust <n>", "largest trust the pool serves", "8")
    .option("--category <id>", "category of the pool's order", "0")
    .option("--offer-volume <n>", "tasks per workerpool order (a new one is signed when it is used up)", "1000")
    .addOption(new Option("--policy <kind>", "hedging policy").choices(["fixed", "adaptive"]).default("fixed"))
    .option("--extra <n>", "fixed policy: replicas beyond the quorum", "1")
    .addOption(
      new Option("--commit-mode <mode>", "relay: the scheduler relays workers' signed commits (they need no gas); direct: workers send contribute themselves")
        .choices(["relay", "direct"])
        .default("relay"),
    )
    .addOption(new Option("--log-level <level>", "log level (logs go to stderr)").default("info"))
    .action(
      wrap<StartOptions>(async (ctx, _args, o) => {
        const port = Number(o.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError("USAGE", `--port: expected 0..65535, got "${o.port}"`);
        const deployment = await ctx.deployment();
        const signer = await ctx.signer();
        const daemon = await Scheduler.init(
          {
            rpcUrl: ctx.rpcUrl,
            deployment,
            workerpool: uint(o.workerpool, "--workerpool"),
            host: o.host,
            port,
            dataDir: o.dataDir,
            offer: {
              price: parseAmount(o.price, await ctx.tokenInfo(), o.wei === true, "--price"),
              volume: uint(o.offerVolume, "--offer-volume"),
              category: uint(o.category, "--category"),
              trust: uint(o.trust, "--trust"),
            },
            router: { policy: { ...defaultSchedulerOptions.router.policy, mode: o.policy, extra: Number(uint(o.extra, "--extra")) }, commitMode: o.commitMode },
            logLevel: o.logLevel,
          },
          signer.privateKey,
        );
        ctx.print({ event: "ready", url: daemon.url, ws: `${daemon.url.replace(/^http/, "ws")}/ws` }, () => [
          `scheduler ready: ${daemon.url}`,
          `  order book  ${daemon.url}/orders`,
          `  results     ${daemon.url}/results/<digest>`,
          `  tasks       ${daemon.url}/tasks/<taskId>`,
          `  workers     ${daemon.url.replace(/^http/, "ws")}/ws`,
        ]);
        const stopped = untilSignal();
        try {
          await stopped.promise;
        } finally {
          stopped.dispose();
          await daemon.close();
        }
      }),
    );
}
