/**
 * What the worker daemon tests share: a fake scheduler (a real `ws` server on 127.0.0.1 that plays the scheduler's
 * side of sdk/session.ts and records every frame), a pino logger whose lines the test can read, and assign frames for
 * the example apps of apps/build (fetched through file:// URIs, checksummed like the registry would).
 */
import { createHash } from "node:crypto";
import { EventEmitter, once } from "node:events";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Wallet, ZeroHash, getAddress, verifyMessage } from "ethers";
import pino, { type Logger } from "pino";
import { WebSocketServer, type WebSocket } from "ws";
import { dealId as dealIdOf, taskId as taskIdOf } from "../../../sdk/eip712";
import { PROTOCOL_VERSION, WorkerFrame, loginMessage, parseFrame, type SchedulerFrame } from "../../../sdk/session";

export const ROOT = join(__dirname, "..", "..", "..");
export const CHAIN_ID = 31337;
export const HUB = getAddress("0x" + "5fc8d32690cc91d4c39d9d3abcbd16989f875707");

type Frame<T extends WorkerFrame["type"]> = Extract<WorkerFrame, { type: T }>;
export type AssignFrame = Extract<SchedulerFrame, { type: "assign" }>;

const WAIT_MS = 30_000;

/** One worker connection as the fake scheduler sees it. */
export class FakeSession extends EventEmitter {
  readonly nonce = "0x" + createHash("sha256").update(String(Math.random())).digest("hex");
  readonly frames: WorkerFrame[] = [];
  /** frames that failed the protocol's validation (a test expects none) */
  readonly invalid: string[] = [];
  hello?: Frame<"hello">;
  /** the address the login signature recovers to */
  signer?: string;
  private readonly taken = new Set<number>();

  constructor(
    readonly socket: WebSocket,
    private readonly scheduler: FakeScheduler,
  ) {
    super();
  }

  /** The first frame of `type` (matching `match`) not returned before, waiting for it if needed. */
  next<T extends WorkerFrame["type"]>(type: T, match: (f: Frame<T>) => boolean = () => true, waitMs = WAIT_MS): Promise<Frame<T>> {
    const find = (): Frame<T> | undefined => {
      for (let i = 0; i < this.frames.length; i++) {
        const f = this.frames[i];
        if (!this.taken.has(i) && f.type === type && match(f as Frame<T>)) {
          this.taken.add(i);
          return f as Frame<T>;
        }
      }
      return undefined;
    };
    const found = find();
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off("frame", onFrame);
        reject(new Error(`no ${type} frame within ${waitMs} ms (got ${this.frames.map((f) => f.type).join(", ") || "nothing"})`));
      }, waitMs);
      const onFrame = (): void => {
        const f = find();
        if (!f) return;
        clearTimeout(timer);
        this.off("frame", onFrame);
        resolve(f);
      };
      this.on("frame", onFrame);
    });
  }

  /** The frames of a type received so far (taken or not). */
  all<T extends WorkerFrame["type"]>(type: T): Frame<T>[] {
    return this.frames.filter((f) => f.type === type) as Frame<T>[];
  }

  send(frame: SchedulerFrame | string | Buffer): void {
    this.socket.send(typeof frame === "string" || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  /** Drops the connection without a closing handshake (a crash or a network cut). */
  drop(): void {
    this.socket.terminate();
  }

  onMessage(text: string): void {
    let frame: WorkerFrame;
    try {
      frame = parseFrame(WorkerFrame, text);
    } catch (e) {
      this.invalid.push((e as Error).message);
      return;
    }
    if (frame.type === "hello") {
      this.hello = frame;
      this.signer = verifyMessage(loginMessage({ nonce: this.nonce, chainId: this.scheduler.chainId, hub: this.scheduler.hub }), frame.signature);
      this.send({ type: "welcome", worker: getAddress(frame.worker), heartbeatMs: this.scheduler.heartbeatMs });
      this.scheduler.emit("login", this);
    } else if (frame.type === "ping") {
      if (this.scheduler.answerPings) this.send({ type: "pong" });
      return; // pings are not recorded
    }
    this.frames.push(frame);
    this.emit("frame", frame);
  }
}

/** A scheduler's session endpoint on 127.0.0.1, for tests. */
export class FakeScheduler extends EventEmitter {
  readonly sessions: FakeSession[] = [];
  answerPings = true;
  heartbeatMs = 1_000;
  chainId = CHAIN_ID;
  hub = HUB;
  private constructor(private readonly wss: WebSocketServer) {
    super();
    wss.on("connection", (socket) => {
      const session = new FakeSession(socket, this);
      this.sessions.push(session);
      socket.on("message", (data, isBinary) => {
        if (isBinary) session.invalid.push("binary frame");
        else session.onMessage(data.toString());
      });
      session.send({ type: "challenge", nonce: session.nonce, chainId: this.chainId, hub: this.hub, version: PROTOCOL_VERSION });
    });
  }

  static async start(): Promise<FakeScheduler> {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/ws" });
    await once(wss, "listening");
    return new FakeScheduler(wss);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/ws`;
  }

  /** The session of login number `index` (0 = the first), waiting for it if needed. */
  async login(index = 0): Promise<FakeSession> {
    for (;;) {
      const logged = this.logins();
      if (logged.length > index) return logged[index];
      await withTimeout(once(this, "login"), WAIT_MS, `no login #${index + 1}`);
    }
  }

  logins(): FakeSession[] {
    return this.sessions.filter((s) => s.hello !== undefined);
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.socket.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

// ----------------------------------------------------------------------------------------------------------- logs

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A debug-level pino logger writing into an array, and a way to wait for a line. */
export function captureLogs(): { log: Logger; lines: LogLine[]; waitFor(match: (l: LogLine) => boolean, what: string): Promise<LogLine> } {
  const lines: LogLine[] = [];
  const events = new EventEmitter();
  const log = pino(
    { level: "debug" },
    {
      write(text: string) {
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        events.emit("line", line);
      },
    },
  );
  const waitFor = (match: (l: LogLine) => boolean, what: string): Promise<LogLine> => {
    const found = lines.find(match);
    if (found) return Promise.resolve(found);
    return withTimeout(
      new Promise<LogLine>((resolve) => {
        const on = (l: LogLine) => {
          if (!match(l)) return;
          events.off("line", on);
          resolve(l);
        };
        events.on("line", on);
      }),
      WAIT_MS,
      `log line: ${what}`,
    );
  };
  return { log, lines, waitFor };
}

// ----------------------------------------------------------------------------------------------------------- apps

export const sha256 = (bytes: Uint8Array) => "0x" + createHash("sha256").update(bytes).digest("hex");

export function appRef(name: string): AssignFrame["app"] {
  const path = join(ROOT, "apps", "build", `${name}.wasm`);
  return { id: "1", runtime: "wasi", uri: pathToFileURL(path).href, checksum: sha256(readFileSync(path)) };
}

export function datasetRef(file: string, name: string): NonNullable<AssignFrame["dataset"]> {
  const path = join(ROOT, "apps", "datasets", file);
  return { id: "1", name, uri: pathToFileURL(path).href, checksum: sha256(readFileSync(path)) };
}

let nextDeal = 1;

/** An assign frame for a fresh task (its own deal), with consistent dealId, index and taskId. */
export function assign(over: Partial<AssignFrame> & { args?: string[] } = {}): AssignFrame {
  const { args, ...rest } = over;
  const dealId = rest.dealId ?? dealIdOf(ZeroHash, nextDeal++);
  const index = rest.index ?? 0;
  return {
    type: "assign",
    replicaId: `r-${dealId.slice(-4)}-${index}-${Math.random().toString(36).slice(2, 8)}`,
    dealId,
    index,
    taskId: taskIdOf(dealId, index),
    app: appRef("echo"),
    dataset: null,
    params: args ? JSON.stringify({ args }) : "",
    callback: false,
    timeoutMs: 30_000,
    authorization: "0x" + "00".repeat(65),
    ...rest,
  };
}

export function randomWallet(): Wallet {
  return new Wallet(Wallet.createRandom().privateKey);
}
