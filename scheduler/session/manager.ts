/**
 * WorkerManager: the scheduler's side of the worker sessions (sdk/session.ts). It authenticates each worker by a
 * signed challenge (EIP-191 over `loginMessage`), admits only workers whose escrow holds enough stake, keeps their
 * heartbeats, declares a worker lost after 3 missed heartbeat periods, and turns valid frames into typed events for
 * the JobRouter. A bad frame gets an `error` frame back and changes nothing; a bad login closes the socket.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import type { IncomingMessage, Server } from "node:http";
import { getAddress } from "ethers";
import { messageSigner } from "../../sdk/crypto";
import type { Logger } from "pino";
import { WebSocketServer, type WebSocket } from "ws";
import {
  FrameError,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  WorkerFrame,
  loginMessage,
  parseFrame,
  type SchedulerFrame,
} from "../../sdk/session";

export interface WorkerManagerOptions {
  chainId: number;
  hub: string;
  heartbeatMs: number;
  /** a session that has not said `hello` by then is closed */
  loginTimeoutMs: number;
  /** largest frame accepted (result files travel inside `revealed`) */
  maxFrameBytes: number;
}

export const defaultWorkerManagerOptions: Omit<WorkerManagerOptions, "chainId" | "hub"> = {
  heartbeatMs: 2_000,
  loginTimeoutMs: 10_000,
  maxFrameBytes: MAX_FRAME_BYTES,
};

/** Decides whether a worker may join: typically its free escrow balance covers a contribution's stake. */
export type AdmissionCheck = (worker: string) => Promise<{ ok: true } | { ok: false; reason: string }>;

export type Pending = Extract<WorkerFrame, { type: "hello" }>["pending"];
export type CommitFrame = Extract<WorkerFrame, { type: "commit" }>;
export type RevealedFrame = Extract<WorkerFrame, { type: "revealed" }>;
export type FailedFrame = Extract<WorkerFrame, { type: "failed" }>;

export interface WorkerManagerEvents {
  joined: [worker: string, pending: Pending];
  lost: [worker: string, reason: string];
  commit: [worker: string, frame: CommitFrame];
  revealed: [worker: string, frame: RevealedFrame];
  failed: [worker: string, frame: FailedFrame];
}

interface Session {
  socket: WebSocket;
  worker?: string;
  nonce: string;
  lastSeen: number;
  connectedAt: number;
}

export interface WorkerInfo {
  address: string;
  connectedAt: number;
  lastSeen: number;
}

export class WorkerManager extends EventEmitter<WorkerManagerEvents> {
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<Session>();
  private readonly byWorker = new Map<string, Session>();
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly opts: WorkerManagerOptions,
    private readonly modules: { server: Server; admit: AdmissionCheck; log: Logger },
  ) {
    super();
    this.wss = new WebSocketServer({ server: modules.server, path: "/ws", maxPayload: opts.maxFrameBytes });
    this.wss.on("connection", (socket, req) => this.onConnection(socket, req));
    this.sweep = setInterval(() => this.sweepLost(), Math.max(100, Math.floor(opts.heartbeatMs / 2)));
    this.sweep.unref();
  }

  /** Authenticated workers connected now. */
  workers(): WorkerInfo[] {
    return [...this.byWorker.entries()].map(([address, s]) => ({ address, connectedAt: s.connectedAt, lastSeen: s.lastSeen }));
  }

  isConnected(worker: string): boolean {
    return this.byWorker.has(getAddress(worker));
  }

  /** Sends a frame to an authenticated worker; false when it is not connected. */
  send(worker: string, frame: SchedulerFrame): boolean {
    const s = this.byWorker.get(getAddress(worker));
    if (!s || s.socket.readyState !== s.socket.OPEN) return false;
    s.socket.send(JSON.stringify(frame));
    return true;
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
    for (const s of this.sessions) s.socket.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private onConnection(socket: WebSocket, req: IncomingMessage): void {
    const session: Session = { socket, nonce: "0x" + randomBytes(32).toString("hex"), lastSeen: Date.now(), connectedAt: Date.now() };
    this.sessions.add(session);
    const log = this.modules.log.child({ remote: req.socket.remoteAddress });
    const loginTimer = setTimeout(() => {
      if (!session.worker) this.reject(session, "LOGIN_TIMEOUT", "no hello before the login deadline");
    }, this.opts.loginTimeoutMs);
    loginTimer.unref();
    socket.on("message", (data, isBinary) => {
      session.lastSeen = Date.now();
      if (isBinary) return this.error(session, "BAD_FRAME", "binary frames are not part of the protocol");
      void this.onFrame(session, data.toString(), log).catch((e) => log.error({ err: e }, "frame handler failed"));
    });
    socket.on("error", (e) => log.warn({ err: e.message }, "worker socket error"));
    socket.on("close", () => {
      clearTimeout(loginTimer);
      this.sessions.delete(session);
      if (session.worker && this.byWorker.get(session.worker) === session) {
        this.byWorker.delete(session.worker);
        this.emit("lost", session.worker, "disconnected");
      }
    });
    this.sendRaw(session, { type: "challenge", nonce: session.nonce, chainId: this.opts.chainId, hub: this.opts.hub, version: PROTOCOL_VERSION });
  }

  private async onFrame(session: Session, text: string, log: Logger): Promise<void> {
    let frame: WorkerFrame;
    try {
      frame = parseFrame(WorkerFrame, text);
    } catch (e) {
      if (e instanceof FrameError) return this.error(session, "BAD_FRAME", e.message);
      throw e;
    }
    if (!session.worker) {
      if (frame.type !== "hello") return this.error(session, "NOT_AUTHENTICATED", `say hello first (got ${frame.type})`);
      return this.login(session, frame, log);
    }
    const worker = session.worker;
    switch (frame.type) {
      case "hello":
        return this.error(session, "ALREADY_AUTHENTICATED", `already logged in as ${worker}`);
      case "ping":
        return this.sendRaw(session, { type: "pong" });
      case "commit":
        this.emit("commit", worker, frame);
        return;
      case "revealed":
        this.emit("revealed", worker, frame);
        return;
      case "failed":
        this.emit("failed", worker, frame);
        return;
    }
  }

  private async login(session: Session, hello: Extract<WorkerFrame, { type: "hello" }>, log: Logger): Promise<void> {
    if (hello.version !== PROTOCOL_VERSION) {
      return this.reject(session, "VERSION", `protocol version ${hello.version} is not ${PROTOCOL_VERSION}`);
    }
    const claimed = getAddress(hello.worker);
    let signer: string;
    try {
      signer = messageSigner(loginMessage({ nonce: session.nonce, chainId: this.opts.chainId, hub: this.opts.hub }), hello.signature);
    } catch {
      return this.reject(session, "BAD_SIGNATURE", "the login signature is malformed");
    }
    if (signer !== claimed) return this.reject(session, "BAD_SIGNATURE", `the login is signed by ${signer}, not ${claimed}`);
    const admitted = await this.modules.admit(claimed).catch((e: Error) => ({ ok: false as const, reason: `admission check failed: ${e.message}` }));
    if (!admitted.ok) return this.reject(session, "NOT_ADMITTED", admitted.reason);
    if (session.socket.readyState !== session.socket.OPEN) return;
    const previous = this.byWorker.get(claimed);
    session.worker = claimed;
    this.byWorker.set(claimed, session);
    if (previous) {
      this.sendRaw(previous, { type: "error", code: "REPLACED", message: "a newer session of this worker logged in" });
      previous.socket.close(4000, "replaced");
    }
    this.sendRaw(session, { type: "welcome", worker: claimed, heartbeatMs: this.opts.heartbeatMs });
    log.info({ worker: claimed, pending: hello.pending.length }, "worker joined");
    this.emit("joined", claimed, hello.pending);
  }

  private sweepLost(): void {
    const limit = Date.now() - 3 * this.opts.heartbeatMs;
    for (const s of this.sessions) {
      if (s.worker && s.lastSeen < limit) {
        this.modules.log.warn({ worker: s.worker }, "worker lost: no heartbeat");
        s.socket.terminate(); // the close handler emits `lost`
      }
    }
  }

  private error(session: Session, code: string, message: string): void {
    this.sendRaw(session, { type: "error", code, message });
  }

  private reject(session: Session, code: string, message: string): void {
    this.modules.log.warn({ code, worker: session.worker }, `worker refused: ${message}`);
    this.sendRaw(session, { type: "error", code, message });
    session.socket.close(4001, code);
  }

  private sendRaw(session: Session, frame: SchedulerFrame): void {
    if (session.socket.readyState === session.socket.OPEN) session.socket.send(JSON.stringify(frame));
  }
}
