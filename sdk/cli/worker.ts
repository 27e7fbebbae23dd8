/**
 * `concord worker start`: runs the worker daemon (worker/index.ts) for a scheduler until SIGINT or SIGTERM, then
 * stops it gracefully (runs aborted, commits in flight recorded, session closed).
 *
 * The chain is optional: it is used when an RPC is given (`--rpc` or CONCORD_RPC_URL) or a `--deposit` is asked for.
 * Then the deployment is read as for every other command, the worker only logs in to a scheduler of that chain and
 * Hub, cross-checks apps and datasets against the registries, and tops its free escrow up to `--deposit`. Without
 * it, the worker trusts the scheduler's challenge and the checksums it sends.
 *
 * stdout gets one line per login to the scheduler (`--json`: one JSON object); the daemon's logs (pino JSON) go to
 * stderr.
 */
import { Option } from "commander";
import type { Command } from "commander";
import type { Wallet } from "ethers";
import { fastWallet } from "../crypto";
import pino from "pino";
import type { Wrap } from "./command";
import type { GlobalOptions } from "./context";
import { CliError } from "./errors";
import { parseAmount } from "./amounts";
import { WorkerDaemon, defaultWorkerOptions, type WorkerConfig } from "../../worker";
import { parseBehaviour } from "../../worker/core/behaviour";

interface StartOptions {
  scheduler: string;
  dataDir: string;
  cacheDir?: string;
  cacheMb?: string;
  deposit?: string;
  wei?: boolean;
  concurrency?: string;
  logLevel: string;
  behaviour: string;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export function registerWorkerCommands(program: Command, wrap: Wrap): void {
  const worker = program.command("worker").description("the worker daemon: runs apps in a sandbox for a scheduler's pool");

  worker
    .command("start")
    .description("connect to a scheduler and run the tasks it assigns, until SIGINT/SIGTERM")
    .requiredOption("--scheduler <url>", "the scheduler's session endpoint, e.g. ws://127.0.0.1:8080/ws")
    .requiredOption("--data-dir <dir>", "the worker's state: commit records and outputs (keep it across restarts)")
    .option("--cache-dir <dir>", "where apps and datasets are cached (default <data-dir>/cache)")
    .option("--cache-mb <n>", `size of the artifact cache in MiB (default ${defaultWorkerOptions.cacheBytes / 1024 ** 2})`)
    .option("--deposit <amount>", "at start, top the free escrow balance up to this amount (token units; uses the chain)")
    .option("--wei", "--deposit is in base units")
    .option("--concurrency <n>", `runs at once (default ${defaultWorkerOptions.maxConcurrentRuns})`)
    .addOption(new Option("--log-level <level>", "log level (logs go to stderr)").choices(LOG_LEVELS).default("info"))
    .addOption(
      new Option(
        "--behaviour <kind>",
        "TEST HOOK, never in production: honest | lie (commit a wrong digest) | slow[:ms] (delay each commit) | silent (never reveal)",
      ).default("honest"),
    )
    .action(
      wrap<StartOptions>(async (ctx, _args, options) => {
        const behaviour = parseBehaviour(options.behaviour);
        if (!behaviour) throw new CliError("USAGE", `--behaviour: expected honest, lie, slow, slow:<ms> or silent, got "${options.behaviour}"`);
        const address = ctx.address(); // validates the key (flag or CONCORD_KEY) without printing it
        const globals = program.opts<GlobalOptions>();
        const signer = walletOf(globals.key ?? ctx.io.env.CONCORD_KEY ?? "");
        if (signer.address !== address) throw new CliError("INVALID_KEY", "invalid key");

        const config: WorkerConfig = {
          schedulerUrl: options.scheduler,
          signer,
          dataDir: options.dataDir,
          cacheDir: options.cacheDir,
          behaviour: behaviour.behaviour,
          logLevel: options.logLevel,
        };
        if (behaviour.slowDelayMs !== undefined) config.slowDelayMs = behaviour.slowDelayMs;
        if (options.cacheMb !== undefined) config.cacheBytes = positiveInt(options.cacheMb, "--cache-mb") * 1024 ** 2;
        if (options.concurrency !== undefined) config.maxConcurrentRuns = positiveInt(options.concurrency, "--concurrency");
        checkSchedulerUrl(options.scheduler);

        const useChain = globals.rpc !== undefined || ctx.io.env.CONCORD_RPC_URL !== undefined || options.deposit !== undefined;
        if (useChain) {
          const deployment = await ctx.deployment();
          config.rpcUrl = ctx.rpcUrl;
          config.deployment = { hub: deployment.hub, appRegistry: deployment.appRegistry, datasetRegistry: deployment.datasetRegistry };
          if (options.deposit !== undefined) {
            config.minDeposit = parseAmount(options.deposit, await ctx.tokenInfo(), options.wei === true, "--deposit");
          }
        }

        const logger = pino(
          { name: "concord-worker", level: options.logLevel, redact: { paths: ["key", "privateKey", "resultDigest"], censor: "[redacted]" } },
          pino.destination({ dest: 2, sync: true }),
        );
        const daemon = new WorkerDaemon(config, { logger });
        daemon.on("connected", (info) =>
          ctx.print({ event: "connected", worker: info.worker, scheduler: info.url, chainId: info.domain.chainId, hub: info.domain.hub }, () =>
            `worker ${info.worker} connected to ${info.url} (chain ${info.domain.chainId}, hub ${info.domain.hub})`,
          ),
        );
        const stopped = untilSignal();
        try {
          await daemon.start();
          const signal = await stopped.promise;
          logger.info({ signal }, "shutting down");
        } finally {
          stopped.dispose();
          await daemon.close();
        }
      }),
    );
}

function walletOf(key: string): Wallet {
  const trimmed = key.trim();
  return fastWallet(trimmed.startsWith("0x") ? trimmed : `0x${trimmed}`);
}

function positiveInt(text: string, what: string): number {
  if (!/^\d{1,9}$/.test(text.trim()) || Number(text) < 1) throw new CliError("USAGE", `${what}: expected a positive integer, got "${text}"`);
  return Number(text);
}

function checkSchedulerUrl(text: string): void {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "ws:" && url.protocol !== "wss:")) {
    throw new CliError("USAGE", `--scheduler: expected a WebSocket URL such as ws://127.0.0.1:8080/ws, got "${text}"`);
  }
}

/** Resolves with the first SIGINT or SIGTERM; `dispose` removes the handlers. */
export function untilSignal(): { promise: Promise<NodeJS.Signals>; dispose(): void } {
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const promise = new Promise<NodeJS.Signals>((resolve) => (onSignal = resolve));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  return {
    promise,
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
