/**
 * One worker per data directory. Two daemons sharing a commit store would each keep their own view of what was
 * committed, so together they could commit two different results for one task, which is exactly what the store
 * exists to prevent; and a directory that served one key must not announce its commits under another key.
 *
 * `<dir>/worker.json` names the address the directory belongs to (written on first use, checked afterwards);
 * `<dir>/worker.lock` holds the pid of the daemon using it (created exclusively; a lock whose process is gone is
 * stale and taken over).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getAddress } from "ethers";
import { WorkerError } from "../core/errors";

export interface DataDirLock {
  release(): void;
}

/** Claims `dir` for `address` in this process; throws INVALID_OPTIONS when another key or a live daemon has it. */
export function claimDataDir(dir: string, address: string): DataDirLock {
  mkdirSync(dir, { recursive: true });
  checkIdentity(dir, getAddress(address));
  const lock = join(dir, "worker.lock");
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: "wx" });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw lockError(dir, e);
      const holder = Number.parseInt(readFileSync(lock, "utf8").trim(), 10);
      if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) {
        throw new WorkerError("INVALID_OPTIONS", `data directory ${dir} is in use by another worker daemon (pid ${holder})`);
      }
      rmSync(lock, { force: true }); // stale: its process is gone
    }
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      rmSync(lock, { force: true });
    },
  };
}

function checkIdentity(dir: string, address: string): void {
  const path = join(dir, "worker.json");
  let owner: string | undefined;
  try {
    owner = (JSON.parse(readFileSync(path, "utf8")) as { address?: string }).address;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new WorkerError("INVALID_OPTIONS", `data directory ${dir}: ${path} is unreadable; remove it only if no commit is pending`);
    }
    writeFileSync(path, JSON.stringify({ address }) + "\n", { flag: "wx" });
    return;
  }
  if (typeof owner !== "string" || getAddress(owner) !== address) {
    throw new WorkerError("INVALID_OPTIONS", `data directory ${dir} belongs to worker ${String(owner)}, not ${address}`);
  }
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function lockError(dir: string, e: unknown): WorkerError {
  return new WorkerError("INVALID_OPTIONS", `cannot lock data directory ${dir}: ${(e as Error).message}`, { cause: e });
}
