import { expect } from "chai";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { Wallet, type HDNodeWallet } from "ethers";
import pino from "pino";
import WebSocket from "ws";
import { loginMessage, type SchedulerFrame } from "../../../sdk/session";
import { WorkerManager } from "../../../scheduler/session/manager";

const HUB = "0x" + "12".repeat(20);
const CHAIN_ID = 31337;
const TASK = "0x" + "ab".repeat(32);

/** A raw WebSocket client that queues the frames it receives. */
class Client {
  readonly frames: SchedulerFrame[] = [];
  private waiters: (() => void)[] = [];
  closed?: number;
  constructor(readonly ws: WebSocket) {
    ws.on("message", (d) => {
      this.frames.push(JSON.parse(d.toString()));
      this.waiters.splice(0).forEach((w) => w());
    });
    ws.on("close", (code) => {
      this.closed = code;
      this.waiters.splice(0).forEach((w) => w());
    });
  }
  static async open(url: string): Promise<Client> {
    const c = new Client(new WebSocket(url));
    await once(c.ws, "open");
    return c;
  }
  async next<T extends SchedulerFrame["type"]>(type: T): Promise<Extract<SchedulerFrame, { type: T }>> {
    for (;;) {
      const i = this.frames.findIndex((f) => f.type === type);
      if (i >= 0) return this.frames.splice(i, 1)[0] as Extract<SchedulerFrame, { type: T }>;
      if (this.closed !== undefined) throw new Error(`closed (${this.closed}) before a ${type} frame`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
  async untilClosed(): Promise<number> {
    while (this.closed === undefined) await new Promise<void>((r) => this.waiters.push(r));
    return this.closed;
  }
  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }
  async login(wallet: HDNodeWallet, sign: HDNodeWallet = wallet, pending: unknown[] = []): Promise<void> {
    const challenge = await this.next("challenge");
    const signature = await sign.signMessage(loginMessage(challenge));
    this.send({ type: "hello", worker: wallet.address, signature, version: 1, pending });
  }
}

describe("WorkerManager: worker sessions", function () {
  let server: Server;
  let manager: WorkerManager;
  let url: string;
  const refused = new Set<string>();
  const clients: Client[] = [];
  const open = async () => {
    const c = await Client.open(url);
    clients.push(c);
    return c;
  };

  beforeEach(async function () {
    server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `ws://127.0.0.1:${(server.address() as { port: number }).port}/ws`;
    manager = new WorkerManager(
      { chainId: CHAIN_ID, hub: HUB, heartbeatMs: 100, loginTimeoutMs: 300, maxFrameBytes: 1 << 20 },
      {
        server,
        admit: async (w) => (refused.has(w) ? { ok: false, reason: `${w} has no stake deposited` } : { ok: true }),
        log: pino({ level: "silent" }),
      },
    );
  });

  afterEach(async function () {
    clients.splice(0).forEach((c) => c.ws.terminate());
    await manager.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it("admits a worker that signs the challenge and reports its pending commits", async function () {
    const w = Wallet.createRandom();
    const c = await open();
    const joined = once(manager, "joined");
    const pending = [{ replicaId: "r1", taskId: TASK, resultHash: TASK }];
    await c.login(w, w, pending);
    expect(await c.next("welcome")).to.deep.equal({ type: "welcome", worker: w.address, heartbeatMs: 100 });
    expect(await joined).to.deep.equal([w.address, pending]);
    expect(manager.isConnected(w.address)).to.equal(true);
    expect(manager.send(w.address, { type: "reveal", replicaId: "r1", taskId: TASK })).to.equal(true);
    expect((await c.next("reveal")).replicaId).to.equal("r1");
  });

  it("refuses a login signed by another key, and closes the session", async function () {
    const c = await open();
    await c.login(Wallet.createRandom(), Wallet.createRandom());
    const e = await c.next("error");
    expect(e.code).to.equal("BAD_SIGNATURE");
    expect(await c.untilClosed()).to.equal(4001);
  });

  it("refuses a signature over another session's challenge (no replay)", async function () {
    const w = Wallet.createRandom();
    const first = await open();
    const challenge = await first.next("challenge");
    const signature = await w.signMessage(loginMessage(challenge));
    const second = await open();
    await second.next("challenge");
    second.send({ type: "hello", worker: w.address, signature, version: 1, pending: [] });
    expect((await second.next("error")).code).to.equal("BAD_SIGNATURE");
  });

  it("refuses a worker without enough stake, with the reason", async function () {
    const w = Wallet.createRandom();
    refused.add(w.address);
    const c = await open();
    await c.login(w);
    const e = await c.next("error");
    expect(e).to.deep.include({ code: "NOT_ADMITTED" });
    expect(e.message).to.include("no stake");
  });

  it("answers malformed, binary and premature frames with an error and keeps the session", async function () {
    const c = await open();
    await c.next("challenge");
    c.send("{not json");
    expect((await c.next("error")).code).to.equal("BAD_FRAME");
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect((await c.next("error")).code).to.equal("BAD_FRAME");
    c.send({ type: "ping" });
    expect((await c.next("error")).code).to.equal("NOT_AUTHENTICATED");
    c.send({ type: "commit", replicaId: "r", taskId: "0x12" });
    expect((await c.next("error")).message).to.match(/invalid frame/);
    const challenge = await c.next("challenge").catch(() => undefined);
    expect(challenge).to.equal(undefined, "only one challenge per session");
  }).timeout(5000);

  it("turns commits, reveals and failures into events", async function () {
    const w = Wallet.createRandom();
    const c = await open();
    await c.login(w);
    await c.next("welcome");
    const commit = once(manager, "commit");
    c.send({ type: "commit", replicaId: "r1", taskId: TASK, resultHash: TASK, resultSeal: TASK, signature: "0x1234" });
    const [worker, frame] = await commit;
    expect(worker).to.equal(w.address);
    expect(frame).to.include({ replicaId: "r1", resultHash: TASK });
    const failed = once(manager, "failed");
    c.send({ type: "failed", replicaId: "r2", taskId: TASK, code: "DEADLINE_EXCEEDED", message: "too slow" });
    expect((await failed)[1]).to.include({ code: "DEADLINE_EXCEEDED" });
    c.send({ type: "ping" });
    await c.next("pong");
  });

  it("declares a worker lost after three silent heartbeat periods", async function () {
    const w = Wallet.createRandom();
    const c = await open();
    await c.login(w);
    await c.next("welcome");
    const [lost] = await once(manager, "lost");
    expect(lost).to.equal(w.address);
    expect(manager.isConnected(w.address)).to.equal(false);
  });

  it("keeps a worker that heartbeats", async function () {
    const w = Wallet.createRandom();
    const c = await open();
    await c.login(w);
    await c.next("welcome");
    const beat = setInterval(() => c.send({ type: "ping" }), 50);
    await new Promise((r) => setTimeout(r, 500));
    clearInterval(beat);
    expect(manager.isConnected(w.address)).to.equal(true);
  });

  it("closes a session that never says hello", async function () {
    const c = await open();
    expect((await c.next("error")).code).to.equal("LOGIN_TIMEOUT");
    expect(await c.untilClosed()).to.equal(4001);
  });

  it("replaces an older session of the same worker", async function () {
    const w = Wallet.createRandom();
    const a = await open();
    await a.login(w);
    await a.next("welcome");
    const b = await open();
    await b.login(w);
    await b.next("welcome");
    expect((await a.next("error")).code).to.equal("REPLACED");
    await a.untilClosed();
    expect(manager.workers().map((x) => x.address)).to.deep.equal([w.address]);
    expect(manager.send(w.address, { type: "pong" })).to.equal(true);
    await b.next("pong");
  });
});
