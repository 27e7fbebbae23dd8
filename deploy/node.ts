/**
 * A local chain for `npm start`, the CLI's tests and end-to-end tests: a `hardhat node` child process bound to
 * loopback only, and Hardhat's well-known development accounts (funded with native gas by the node).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { HDNodeWallet, type Provider, type Wallet } from "ethers";
import { fastWallet } from "../sdk/crypto";

/** Hardhat's development mnemonic: its accounts are funded with native gas by `hardhat node`. */
export const DEV_MNEMONIC = "test test test test test test test test test test test junk";

const ROOT = join(__dirname, "..");

/** Development account `index` of DEV_MNEMONIC (never use these keys outside a local chain). */
export function devWallet(index: number, provider?: Provider): Wallet {
  const node = HDNodeWallet.fromPhrase(DEV_MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`);
  return fastWallet(node.privateKey, provider);
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `hardhat node --hostname 127.0.0.1 --port <port>` and resolves once it serves JSON-RPC; rejects with the
 * node's output if it exits first. Its logs are drained and dropped.
 */
export function startHardhatNode(port: number): Promise<ChildProcess> {
  const hardhat = join(ROOT, "node_modules", ".bin", "hardhat");
  const child = spawn(hardhat, ["node", "--hostname", "127.0.0.1", "--port", String(port)], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let output = "";
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Started HTTP")) {
        child.stdout!.off("data", onData);
        child.stdout!.resume(); // keep draining the node's logs
        child.off("exit", onExit);
        resolve(child);
      }
    };
    const onExit = (code: number | null) => reject(new Error(`local chain exited (code ${code}):\n${output.trim()}`));
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("exit", onExit);
  });
}
