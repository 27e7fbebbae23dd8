/**
 * The worker's side of the scheduler session (protocol in sdk/session.ts): one WebSocket to the scheduler, kept alive
 * for the daemon's whole life.
 *
 * - Login: the scheduler's `challenge` is answered with `hello`, signed (EIP-191) over `loginMessage(challenge)` and
 *   listing the commits not revealed yet (`pending`), so a scheduler can ask for their reveal after a restart.
 * - Liveness: a `ping` every heartbeat period (the one the scheduler states in `welcome`). A scheduler from which no
 *   frame at all (pong or other) arrived in 3 periods is declared dead: the socket is dropped and the client
 *   reconnects, with exponential backoff and jitter between attempts, reset by the next `welcome`.
 * - Frames: every incoming frame is validated with `parseFrame`; an invalid one is logged and ignored (the session
 *   goes on). Valid `assign`, `reveal` and `cancel` frames go to the handler, with the EIP-712 domain of the session
 *   (the challenge's chain and Hub) they were received in. Outgoing frames are validated too: a frame the protocol
 *   would refuse is a bug of ours, logged and not sent.
 */
import { getAddress } from "ethers";
import type { BaseWallet } from "ethers";
import type { Logger } from "pino";
import WebSocket from "ws";
import {
  FrameError,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  SchedulerFrame,
  WorkerFrame,
  loginMessage,
  parseFrame,
} from "../../sdk/session";
import { backoffDelay, defaultBackoffOptions, type BackoffOptions } from "../core/backoff";

type FrameOf<T extends SchedulerFrame["type"]> = Extract<SchedulerFrame, { type: T }>;
export type Challenge = FrameOf<"challenge">;
export type TaskFrame = FrameOf<"assign"> | FrameOf<"reveal"> | FrameOf<"cancel">;
export type PendingCommit = Extract<WorkerFrame, { type: "hello" }>["pending"][number];

/** The EIP-712 domain parameters of a session: what commits and reveals are signed for. */
export interface SessionDomain {
  chainId: number;
  hub: string;
}

export interface SessionOptions {
  /** ws://host:port/ws */
  url: string;
  /** ping period until the scheduler's `welcome` states its own; also bounds the wait for a login (3 periods) */
  heartbeatMs: number;
  backoff: BackoffOptions;
  /** largest frame accepted from the scheduler */
  maxFrameBytes: number;
}

export const defaultSessionOptions: Omit<SessionOptions, "url"> = {
  heartbeatMs: 2_000,
  backoff: defaultBackoffOptions,
  maxFrameBytes: MAX_FRAME_BYTES,
};

export interface SessionHandlers {
  /** the commits to announce in `hello.pending` (at most 1000 are sent: the most recent) */
  pending(): PendingCommit[];
  /** a reason to refuse this scheduler (another chain or Hub than ours), or undefined to log in */
  checkChallenge?(challenge: Challenge): string | undefined;
  /** a valid assign / reveal / cancel received after `welcome` */
  onTask(frame: TaskFrame, domain: SessionDomain): void;
  onConnected?(info: { worker: string; heartbeatMs: number; domain: SessionDomain; url: string }): void;
  onDisconnected?(reason: string): void;
}

export interface SessionModules {
  signer: BaseWallet;
  log: Logger;
  handlers: SessionHandlers;
  /** the jitter's random source (tests pin it) */
  random?: () => number;
}

/** Pings never go faster than this, whatever a scheduler asks for. */
const MIN_HEARTBEAT_MS = 50;
const MAX_PENDING = 1000;

interface Connection {
  socket: WebSocket;
  lastSeen: number;
  /** set by the challenge */
  domain?: SessionDomain;
  welcomed: boolean;
  heartbeatMs: number;
  timer?: NodeJS.Timeout;
}

export class SessionClient {
  readonly address: string;
  private readonly log: Logger;
  private current?: Connection;
  private attempt = 0;
  private reconnectTimer?: NodeJS.Timeout;
  private closing = false;
  private started = false;

  constructor(
    private readonly opts: SessionOptions,
    private readonly modules: SessionModules,
  ) {
    this.address = getAddress(modules.signer.address);
    this.log = modules.log.child({ scheduler: opts.url });
  }

  /** Whether a session is logged in (welcomed) right now. */
  get connected(): boolean {
    return this.current?.welcomed === true && this.current.socket.readyState === WebSocket.OPEN;
  }

  /** The domain of the logged-in session, if any. */
  get domain(): SessionDomain | undefined {
    return this.connected ? this.current!.domain : undefined;
  }

  /** Connects, and keeps reconnecting until `close()`. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.connect();
  }

  /** Closes the session for good (no reconnection); resolves once the socket is closed. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    const conn = this.current;
    if (!conn) return;
    clearInterval(conn.timer);
    const socket = conn.socket;
    if (socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
    else socket.close(1000, "worker shutting down");
    // A scheduler that does not answer the closing handshake does not hold the shutdown.
    const forced = setTimeout(() => socket.terminate(), 1_000);
    await closed;
    clearTimeout(forced);
  }

  /**
   * Sends a frame on the logged-in session. Resolves to false (and sends nothing) when there is none, when the frame
   * is not a valid WorkerFrame (a bug: logged) or too large; true once the frame was handed to the socket.
   */
  send(frame: WorkerFrame): Promise<boolean> {
    const conn = this.current;
    if (!conn || !this.connected) {
      this.log.warn({ frame: frame.type, ...idsOf(frame) }, "not connected: frame not sent");
      return Promise.resolve(false);
    }
    return this.sendOn(conn, frame);
  }

  // ----------------------------------------------------------------------------------------------------- private

  private connect(): void {
    if (this.closing) return;
    const socket = new WebSocket(this.opts.url, {
      maxPayload: this.opts.maxFrameBytes,
      handshakeTimeout: Math.max(1_000, 3 * this.opts.heartbeatMs),
      perMessageDeflate: false,
    });
    const conn: Connection = { socket, lastSeen: Date.now(), welcomed: false, heartbeatMs: this.opts.heartbeatMs };
    this.current = conn;
    socket.on("open", () => {
      conn.lastSeen = Date.now();
      this.log.debug("socket open, waiting for the challenge");
      this.startWatchdog(conn);
    });
    socket.on("message", (data, isBinary) => {
      conn.lastSeen = Date.now();
      if (isBinary) {
        this.log.error({ err: "binary frames are not part of the protocol" }, "invalid frame ignored");
        return;
      }
      const text = Buffer.isBuffer(data) ? data.toString("utf8") : Array.isArray(data) ? Buffer.concat(data).toString("utf8") : Buffer.from(data).toString("utf8");
      let frame: SchedulerFrame;
      try {
        frame = parseFrame(SchedulerFrame, text);
      } catch (e) {
        const err = e instanceof FrameError ? e.message : `unexpected: ${(e as Error).message}`;
        this.log.error({ err }, "invalid frame ignored");
        return;
      }
      try {
        this.onFrame(conn, frame);
      } catch (e) {
        this.log.error({ err: (e as Error).message, frame: frame.type }, "frame handler failed");
      }
    });
    socket.on("error", (e) => this.log.debug({ err: e.message }, "socket error"));
    socket.on("close", (code, reason) => this.onClose(conn, code, reason.toString()));
  }

  private onClose(conn: Connection, code: number, reason: string): void {
    clearInterval(conn.timer);
    if (this.current !== conn) return;
    const why = reason ? `${code} ${reason}` : String(code);
    if (conn.welcomed) {
      this.log[this.closing ? "info" : "warn"]({ code, reason }, "disconnected from the scheduler");
      this.modules.handlers.onDisconnected?.(why);
    }
    if (this.closing) return;
    const delayMs = backoffDelay(this.attempt++, this.opts.backoff, (this.modules.random ?? Math.random)());
    this.log.info({ delayMs, attempt: this.attempt, code }, "reconnecting");
    this.reconnectTimer = setTimeout(() => this.connect(), delayMs);
  }

  /** Drops a scheduler that stopped talking; pings a live one. */
  private startWatchdog(conn: Connection): void {
    clearInterval(conn.timer);
    conn.timer = setInterval(() => {
      if (conn.socket.readyState !== WebSocket.OPEN) return;
      const silentMs = Date.now() - conn.lastSeen;
      if (silentMs > 3 * conn.heartbeatMs) {
        this.log.warn({ silentMs, welcomed: conn.welcomed }, "scheduler silent for 3 heartbeats: dropping the connection");
        conn.socket.terminate();
        return;
      }
      if (conn.welcomed) void this.sendOn(conn, { type: "ping" });
    }, conn.heartbeatMs);
  }

  private onFrame(conn: Connection, frame: SchedulerFrame): void {
    switch (frame.type) {
      case "challenge":
        return void this.login(conn, frame).catch((e: Error) => {
          this.log.error({ err: e.message }, "login failed");
          conn.socket.terminate();
        });
      case "welcome": {
        if (conn.welcomed || !conn.domain) return void this.log.warn("unexpected welcome ignored");
        if (getAddress(frame.worker) !== this.address) {
          this.log.error({ welcomed: frame.worker }, "the scheduler welcomed another address: dropping the connection");
          return void conn.socket.terminate();
        }
        conn.welcomed = true;
        conn.heartbeatMs = Math.max(MIN_HEARTBEAT_MS, frame.heartbeatMs);
        this.attempt = 0;
        this.startWatchdog(conn);
        this.log.info({ worker: this.address, heartbeatMs: conn.heartbeatMs, chainId: conn.domain.chainId }, "connected to the scheduler");
        this.modules.handlers.onConnected?.({ worker: this.address, heartbeatMs: conn.heartbeatMs, domain: conn.domain, url: this.opts.url });
        return;
      }
      case "pong":
        return;
      case "error":
        if (conn.welcomed) this.log.warn({ code: frame.code, reason: frame.message }, "the scheduler reported an error");
        else this.log.error({ code: frame.code, reason: frame.message }, "login refused by the scheduler");
        return;
      case "assign":
      case "reveal":
      case "cancel":
        if (!conn.welcomed || !conn.domain) {
          return void this.log.warn({ frame: frame.type, replicaId: frame.replicaId }, "task frame before welcome ignored");
        }
        this.modules.handlers.onTask(frame, conn.domain);
        return;
    }
  }

  private async login(conn: Connection, challenge: Challenge): Promise<void> {
    if (conn.domain) return void this.log.warn("second challenge ignored");
    if (challenge.version !== PROTOCOL_VERSION) {
      this.log.error({ version: challenge.version, ours: PROTOCOL_VERSION }, "the scheduler speaks another protocol version");
      return void conn.socket.close(1002, "protocol version");
    }
    const refusal = this.modules.handlers.checkChallenge?.(challenge);
    if (refusal) {
      this.log.error({ chainId: challenge.chainId, hub: challenge.hub }, `refusing to log in: ${refusal}`);
      return void conn.socket.close(1008, "wrong chain or hub");
    }
    conn.domain = { chainId: challenge.chainId, hub: getAddress(challenge.hub) };
    const signature = await this.modules.signer.signMessage(loginMessage(challenge));
    const pending = this.modules.handlers.pending().slice(-MAX_PENDING);
    if (this.current !== conn) return;
    await this.sendOn(conn, { type: "hello", worker: this.address, signature, version: PROTOCOL_VERSION, pending });
    this.log.debug({ pending: pending.length }, "hello sent");
  }

  private sendOn(conn: Connection, frame: WorkerFrame): Promise<boolean> {
    const checked = WorkerFrame.safeParse(frame);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      this.log.error({ frame: frame.type, ...idsOf(frame), err: `${issue.path.join(".")}: ${issue.message}` }, "refusing to send an invalid frame");
      return Promise.resolve(false);
    }
    const text = JSON.stringify(frame);
    if (Buffer.byteLength(text) > MAX_FRAME_BYTES) {
      this.log.error({ frame: frame.type, ...idsOf(frame), bytes: Buffer.byteLength(text) }, "frame too large: not sent");
      return Promise.resolve(false);
    }
    if (conn.socket.readyState !== WebSocket.OPEN) return Promise.resolve(false);
    return new Promise((resolve) => conn.socket.send(text, (err) => resolve(!err)));
  }
}

/** The ids a frame carries, as log fields (never its digest or signature). */
function idsOf(frame: WorkerFrame): Record<string, string> {
  return "replicaId" in frame ? { replicaId: frame.replicaId, taskId: frame.taskId } : {};
}
