/**
 * The worker daemon against the scheduler's real WorkerManager (scheduler/session/manager.ts): login admitted,
 * commit and revealed delivered as events, pending commits announced after a restart.
 */
import { expect } from "chai";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WorkerManager, type CommitFrame, type Pending, type RevealedFrame } from "../../../scheduler/session/manager";
import { resultHash } from "../../../sdk/eip712";
import { WorkerDaemon } from "../../../worker";
import { CHAIN_ID, HUB, assign, captureLogs, randomWallet } from "./harness";

describe("worker daemon ⇄ WorkerManager", function () {
  let server: Server;
  let manager: WorkerManager;
  let dataDir: string;
  const daemons: WorkerDaemon[] = [];

  beforeEach(async function () {
    server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    manager = new WorkerManager(
      { chainId: CHAIN_ID, hub: HUB, heartbeatMs: 300, loginTimeoutMs: 5_000, maxFrameBytes: 24 * 1024 * 1024 },
      { server, admit: async () => ({ ok: true }), log: captureLogs().log },
    );
    dataDir = await mkdtemp(join(tmpdir(), "concord-worker-interop-"));
  });
  afterEach(async function () {
    await Promise.all(daemons.splice(0).map((d) => d.close()));
    await manager.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dataDir, { recursive: true, force: true });
  });

  it("is admitted, commits, survives a restart and reveals", async function () {
    const wallet = randomWallet();
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`;
    const start = async () => {
      const d = new WorkerDaemon({ schedulerUrl: url, signer: wallet, dataDir, heartbeatMs: 300 }, { logger: captureLogs().log });
      daemons.push(d);
      const joined = once(manager, "joined") as Promise<[string, Pending]>;
      await d.start();
      return { daemon: d, joined: await joined };
    };
    const first = await start();
    expect(first.joined).to.deep.equal([wallet.address, []]);

    const frame = assign({ args: ["interop"] });
    const committed = once(manager, "commit") as Promise<[string, CommitFrame]>;
    expect(manager.send(wallet.address, frame)).to.equal(true);
    const [, commit] = await committed;
    expect(commit).to.include({ replicaId: frame.replicaId, taskId: frame.taskId });

    await first.daemon.close();
    const second = await start();
    expect(second.joined[1]).to.deep.equal([
      { replicaId: frame.replicaId, taskId: frame.taskId, resultHash: commit.resultHash, resultSeal: commit.resultSeal, signature: commit.signature },
    ]);

    const revealedEvent = once(manager, "revealed") as Promise<[string, RevealedFrame]>;
    manager.send(wallet.address, { type: "reveal", replicaId: frame.replicaId, taskId: frame.taskId });
    const [who, revealed] = await revealedEvent;
    expect(who).to.equal(wallet.address);
    expect(resultHash(frame.taskId, revealed.resultDigest)).to.equal(commit.resultHash);
  });
});
