/**
 * What the CLI tests share: a real `hardhat node` on a free loopback port with Concord deployed into a temporary
 * deployments directory and development accounts funded with test tokens; the CLI run as a child process
 * (`node bin/concord …`, the real thing) or in-process through `main()` (fast, for the many error cases); and a tiny
 * order book server that records what it is sent.
 */
import { spawn } from "node:child_process";
import { createServer as createHttpServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JsonRpcProvider, Network, Wallet, parseEther } from "ethers";
import { deployConcord } from "../../deploy/lib";
import { devWallet, freePort, startHardhatNode } from "../../deploy/node";
export { freePort };
import type { Deployment } from "../../deploy/lib";
import { writeDeployment } from "../../deploy/deployments";
import { main } from "../../sdk/cli/main";
import {
  AppRegistry__factory,
  ConcordTestToken__factory,
  DatasetRegistry__factory,
  Hub__factory,
  WorkerpoolRegistry__factory,
} from "../../typechain-types";

export const ROOT = join(__dirname, "..", "..");
const BIN = join(ROOT, "bin", "concord");
export const TOKENS_PER_ACCOUNT = parseEther("1000");

export interface Chain {
  url: string;
  provider: JsonRpcProvider;
  deployment: Deployment;
  /** The temporary CONCORD_DEPLOYMENTS_DIR holding `<chainId>.json`. */
  deploymentsDir: string;
  deploymentsFile: string;
  /** Hardhat's development accounts (funded with native gas), each with TOKENS_PER_ACCOUNT test tokens. */
  accounts: Wallet[];
  /** The environment that points the CLI at this chain (add CONCORD_KEY to sign). */
  env: Record<string, string>;
  hub: ReturnType<typeof Hub__factory.connect>;
  token: ReturnType<typeof ConcordTestToken__factory.connect>;
  apps: ReturnType<typeof AppRegistry__factory.connect>;
  datasets: ReturnType<typeof DatasetRegistry__factory.connect>;
  workerpools: ReturnType<typeof WorkerpoolRegistry__factory.connect>;
  stop(): Promise<void>;
}

/** Starts a node, deploys Concord and funds `accountCount` accounts with test tokens. */
export async function startChain(accountCount = 6): Promise<Chain> {
  const port = await freePort();
  const node = await startHardhatNode(port);
  const url = `http://127.0.0.1:${port}`;
  const network = Network.from(31337);
  const provider = new JsonRpcProvider(url, network, { staticNetwork: network, cacheTimeout: -1 });
  const accounts = Array.from({ length: accountCount }, (_, i) =>
    devWallet(i, provider),
  );
  const deployment = await deployConcord(accounts[0]);
  const deploymentsDir = mkdtempSync(join(tmpdir(), "concord-cli-"));
  const deploymentsFile = writeDeployment(deployment, deploymentsDir);
  const token = ConcordTestToken__factory.connect(deployment.token, accounts[0]);
  for (const account of accounts) await (await token.mint(account.address, TOKENS_PER_ACCOUNT)).wait();
  return {
    url,
    provider,
    deployment,
    deploymentsDir,
    deploymentsFile,
    accounts,
    env: { CONCORD_RPC_URL: url, CONCORD_DEPLOYMENTS_DIR: deploymentsDir },
    hub: Hub__factory.connect(deployment.hub, provider),
    token: ConcordTestToken__factory.connect(deployment.token, provider),
    apps: AppRegistry__factory.connect(deployment.appRegistry, provider),
    datasets: DatasetRegistry__factory.connect(deployment.datasetRegistry, provider),
    workerpools: WorkerpoolRegistry__factory.connect(deployment.workerpoolRegistry, provider),
    async stop() {
      provider.destroy();
      const exited = new Promise<void>((resolve) => node.once("exit", () => resolve()));
      node.kill("SIGTERM");
      await exited;
    },
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment a CLI run sees: none of the caller's CONCORD_* variables, only `env`. */
function cleanEnv(env: Record<string, string>): Record<string, string | undefined> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CONCORD_")));
  return { ...base, ...env };
}

/** Runs `node bin/concord <args>` as a child process. */
export function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Runs the CLI in this process through `main()`, with captured output. */
export async function callCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: { ...env },
  });
  return { code, stdout, stderr };
}

/** The JSON object a `--json` run printed (exactly one line). */
export function jsonOf(result: CliResult): Record<string, unknown> {
  const lines = result.stdout.trim().split("\n");
  if (result.code !== 0 || lines.length !== 1) {
    throw new Error(`expected one JSON line and exit 0, got code ${result.code}:\n${result.stdout}\n${result.stderr}`);
  }
  return JSON.parse(lines[0]) as Record<string, unknown>;
}

export interface BookServer {
  url: string;
  /** Bodies received on POST /orders, parsed. */
  received: { path: string; contentType: string | undefined; body: unknown }[];
  /** What the next requests get: status and JSON body. */
  reply: { status: number; body: unknown };
  close(): Promise<void>;
}

/** A stand-in order book on loopback: records each POST and answers with `reply`. */
export async function startBook(): Promise<BookServer> {
  const book: Omit<BookServer, "url" | "close"> = { received: [], reply: { status: 201, body: { accepted: true } } };
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    let text = "";
    req.on("data", (c: Buffer) => (text += c.toString()));
    req.on("end", () => {
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // recorded as text
      }
      book.received.push({ path: `${req.method} ${req.url}`, contentType: req.headers["content-type"], body });
      res.writeHead(book.reply.status, { "content-type": "application/json" });
      res.end(JSON.stringify(book.reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return Object.assign(book, {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

/** Asserts the shape every failure must have: exit code ≠ 0 and exactly one `concord: …` line on stderr. */
export function expectOneLineError(result: CliResult, pattern: RegExp): void {
  const lines = result.stderr.split("\n").filter((l) => l !== "");
  if (result.code === 0) throw new Error(`expected a failure, got exit 0:\n${result.stdout}`);
  if (lines.length !== 1 || !lines[0].startsWith("concord: ")) {
    throw new Error(`expected one "concord: …" line on stderr, got:\n${result.stderr}`);
  }
  if (!pattern.test(lines[0])) throw new Error(`stderr line ${JSON.stringify(lines[0])} does not match ${pattern}`);
}
