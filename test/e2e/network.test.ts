/**
 * End to end, with real processes on loopback: a `hardhat node`, the scheduler and the workers each a `concord`
 * process (deploy/cluster.ts), requests signed and posted to the scheduler's order book, tasks run in the workers'
 * sandboxes, agreed on by quorum and finalized on chain.
 */
import { expect } from "chai";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Wallet, toUtf8String } from "ethers";
import WebSocket from "ws";
import { startLocalNetwork, type LocalNetwork } from "../../deploy/network";
import { publishAssetOrders, runRequest, startCluster, type Cluster } from "../../deploy/cluster";
import { domain, signOrder } from "../../sdk/eip712";
import { loginMessage } from "../../sdk/session";
import { buildRequestOrder, orderToJson } from "../../sdk/orders";
import { Hub__factory, ResultConsumer__factory } from "../../typechain-types";

const QUERY = "SELECT segment, avg(ltv) FROM customers GROUP BY segment";

async function up(
  workers: number,
  behaviours?: Record<number, string>,
  commitMode?: "relay" | "direct",
  offerVolume?: number,
): Promise<{ net: LocalNetwork; cluster: Cluster }> {
  const net = await startLocalNetwork({ port: 0, accounts: 8, deploymentsDir: mkdtempSync(join(tmpdir(), "concord-e2e-")) });
  try {
    const cluster = await startCluster(net, { workers, behaviours, commitMode, offerVolume });
    await publishAssetOrders(net, cluster);
    return { net, cluster };
  } catch (e) {
    await net.stop();
    throw e;
  }
}

describe("end to end: chain, scheduler and workers as processes", function () {
  this.timeout(180_000);

  describe("four honest workers", function () {
    let net: LocalNetwork;
    let cluster: Cluster;
    before(async function () {
      ({ net, cluster } = await up(4));
    });
    after(async function () {
      await cluster?.stop();
      await net?.stop();
    });

    it("runs a WASI app at trust 1 to a finalized result", async function () {
      const r = await runRequest(net, cluster, { app: cluster.examples.apps.sieve, trust: 1, params: { args: ["--n", "100000"] }, requester: net.accounts[6] });
      expect(r.result).to.deep.equal({ largest: 99991, n: 100000, primes: 9592 });
      const hub = Hub__factory.connect(net.deployment.hub, net.provider);
      expect((await hub.viewTask(r.taskId)).status).to.equal(3n); // COMPLETED
      expect(await hub.resultFor(r.taskId)).to.equal(r.digest);
    });

    it("runs the customers SQL query at trust 3: three distinct workers agree", async function () {
      const r = await runRequest(net, cluster, { app: cluster.examples.apps.sql, dataset: cluster.examples.customers, trust: 3, params: { query: QUERY }, requester: net.accounts[6] });
      expect((r.result as { rows: unknown[][] }).rows.map((row) => row[0])).to.deep.equal(["consumer", "enterprise", "smb", "startup"]);
      const revealed = (r.task.replicas as { worker: string; revealed: boolean }[]).filter((x) => x.revealed);
      expect(new Set(revealed.map((x) => x.worker)).size).to.be.at.least(3);
      const events = r.task.timeline.map((e) => e.event);
      expect(events).to.include.members(["task.created", "replica.assigned", "replica.committed", "consensus", "contributed", "replica.revealed", "revealed", "finalized"]);
      // the winners are asked to reveal at consensus, while contributeBatch is mined; their reveals go on chain after it
      const asked = events.flatMap((e, i) => (e === "replica.reveal_requested" ? [i] : []));
      expect(asked).to.have.length.at.least(3);
      expect(Math.max(...asked)).to.be.below(events.indexOf("contributed"));
      expect(events.lastIndexOf("replica.revealed")).to.be.below(events.indexOf("revealed"));
      // the task was started from the matcher's orders while its matchOrders was mined; nothing of it went on chain
      // before the DealMatched confirmed the deal
      expect(r.task.timeline[0]).to.include({ event: "task.created", speculative: true });
      expect(events).to.include("deal.confirmed");
      expect(events.indexOf("deal.confirmed")).to.be.below(events.indexOf("consensus"));
    });

    it("delivers the verified result to the consumer contract through the callback", async function () {
      const r = await runRequest(net, cluster, {
        app: cluster.examples.apps.echo,
        trust: 3,
        params: { args: ["verified", "by", "three"] },
        callback: cluster.examples.consumer,
        requester: net.accounts[6],
      });
      const consumer = ResultConsumer__factory.connect(cluster.examples.consumer, net.provider);
      expect(toUtf8String(await consumer.resultOf(r.taskId))).to.equal("verified by three");
      expect(r.callbackData).to.equal(await consumer.resultOf(r.taskId));
    });

    it("sends a finalize right behind its reveals once one of its kind went through (pipelined, unestimated)", async function () {
      const run = (word: string) => runRequest(net, cluster, { app: cluster.examples.apps.echo, trust: 1, params: { args: [word] }, requester: net.accounts[6] });
      await run("first"); // at least one plain finalize has gone through (earlier tests may have made it already)
      const r = await run("second");
      expect(r.result).to.deep.equal({ args: ["second"] });
      const finalized = r.task.timeline.find((e) => e.event === "finalized") as { tx: string; pipelined?: boolean };
      expect(finalized.pipelined).to.equal(true);
      const revealed = r.task.timeline.find((e) => e.event === "revealed")!;
      const [reveal, finalize] = await Promise.all([revealed.tx!, finalized.tx].map((h) => net.provider.getTransaction(h)));
      expect(finalize!.nonce).to.equal(reveal!.nonce + 1);
      const hub = Hub__factory.connect(net.deployment.hub, net.provider);
      expect(await hub.resultFor(r.taskId)).to.equal(r.digest);
    });

    describe("bad input gets a clear 4xx and the scheduler keeps serving", function () {
      const post = (body: string) =>
        fetch(`${cluster.schedulerUrl}/orders`, { method: "POST", headers: { "content-type": "application/json" }, body });
      const requestOrder = (over: Record<string, unknown> = {}) =>
        buildRequestOrder({ app: cluster.examples.apps.echo, appmaxprice: 0n, workerpoolmaxprice: 0n, category: 0n, requester: net.accounts[6].address, ...over });

      it("malformed JSON, unknown kinds, missing fields", async function () {
        for (const [body, status] of [
          ["{not json", 400],
          [JSON.stringify({ kind: "Banana", order: {} }), 400],
          [JSON.stringify({ kind: "RequestOrder", order: { app: "1" } }), 400],
        ] as const) {
          const res = await post(body);
          expect(res.status, body).to.equal(status);
          const json = (await res.json()) as { error: { code: string; message: string } };
          expect(json.error.message).to.be.a("string").and.not.include("\n");
        }
      });

      it("unsigned, badly signed, expired and wrong-chain orders", async function () {
        const dom = domain(net.deployment.chainId, net.deployment.hub);
        const order = requestOrder();
        expect((await post(JSON.stringify({ kind: "RequestOrder", order: orderToJson(order) }))).status).to.equal(400);
        const forged = await signOrder(Wallet.createRandom(), dom, "RequestOrder", order);
        expect((await post(JSON.stringify({ kind: "RequestOrder", order: orderToJson(forged) }))).status).to.equal(422);
        const expired = await signOrder(net.accounts[6], dom, "RequestOrder", requestOrder({ expiry: 1n }));
        const res = await post(JSON.stringify({ kind: "RequestOrder", order: orderToJson(expired) }));
        expect(res.status).to.equal(422);
        expect(((await res.json()) as { error: { code: string } }).error.code).to.equal("EXPIRED");
        const otherChain = await signOrder(net.accounts[6], domain(1, net.deployment.hub), "RequestOrder", order);
        expect((await post(JSON.stringify({ kind: "RequestOrder", order: orderToJson(otherChain) }))).status).to.equal(422);
        expect((await fetch(`${cluster.schedulerUrl}/orders`)).status).to.equal(200);
      });

      it("malformed WebSocket frames and an unauthenticated worker", async function () {
        const ws = new WebSocket(`${cluster.schedulerUrl.replace(/^http/, "ws")}/ws`);
        const frames: { type: string; code?: string }[] = [];
        ws.on("message", (d) => frames.push(JSON.parse(d.toString())));
        await new Promise((r) => ws.once("open", r));
        ws.send("{garbage");
        ws.send(JSON.stringify({ type: "commit", replicaId: "x", taskId: "0x" + "1".repeat(64), resultHash: "0x" + "1".repeat(64), resultSeal: "0x" + "1".repeat(64), signature: "0x" }));
        const w = Wallet.createRandom();
        ws.send(JSON.stringify({ type: "hello", worker: w.address, signature: await w.signMessage("not the challenge"), version: 1, pending: [] }));
        await new Promise<void>((r) => ws.once("close", () => r()));
        expect(frames.map((f) => f.code ?? f.type)).to.deep.equal(["challenge", "BAD_FRAME", "NOT_AUTHENTICATED", "BAD_SIGNATURE"]);
        // a correctly signed login from a key with no stake deposited is refused with the reason
        const broke = Wallet.createRandom();
        const ws2 = new WebSocket(`${cluster.schedulerUrl.replace(/^http/, "ws")}/ws`);
        const frames2: { type: string; code?: string; message?: string; nonce?: string; chainId?: number; hub?: string }[] = [];
        ws2.on("message", async (d) => {
          const f = JSON.parse(d.toString());
          frames2.push(f);
          if (f.type === "challenge") {
            ws2.send(JSON.stringify({ type: "hello", worker: broke.address, signature: await broke.signMessage(loginMessage(f)), version: 1, pending: [] }));
          }
        });
        await new Promise<void>((r) => ws2.once("close", () => r()));
        expect(frames2[1]).to.include({ type: "error", code: "NOT_ADMITTED" });
        expect(frames2[1].message).to.match(/0\.0 CCT free in escrow/);
        const r = await runRequest(net, cluster, { app: cluster.examples.apps.echo, trust: 1, params: { args: ["still", "serving"] }, requester: net.accounts[6] });
        expect(r.result).to.deep.equal({ args: ["still", "serving"] });
      });
    });
  });

  describe("a lying worker among four", function () {
    let net: LocalNetwork;
    let cluster: Cluster;
    before(async function () {
      // worker 0 lies; worker 1 is slow, so the quorum of 3 needs it and the liar's commit is on chain by then
      ({ net, cluster } = await up(4, { 0: "lie", 1: "slow:1500" }));
    });
    after(async function () {
      await cluster?.stop();
      await net?.stop();
    });

    it("is outvoted at trust 3 and loses its stake", async function () {
      const liar = net.accounts[2].address;
      const hub = Hub__factory.connect(net.deployment.hub, net.provider);
      const before = await hub.balanceOf(liar);
      const r = await runRequest(net, cluster, { app: cluster.examples.apps.sql, dataset: cluster.examples.customers, trust: 3, params: { query: QUERY }, requester: net.accounts[6] });
      expect((r.result as { rows: unknown[] }).rows).to.have.length(4);
      const replicas = r.task.replicas as { worker: string; revealed: boolean }[];
      expect(replicas.find((x) => x.worker === liar)?.revealed).to.equal(false);
      expect(await hub.balanceOf(liar)).to.be.lessThan(before);
      const contribution = await hub.viewContribution(r.taskId, liar);
      expect(contribution.status).to.not.equal(0n);
    });
  });

  describe("a pool whose workers commit with their own transactions", function () {
    let net: LocalNetwork;
    let cluster: Cluster;
    before(async function () {
      // one task per workerpool order: every request needs the fresh order the scheduler signs when one is used up
      ({ net, cluster } = await up(3, undefined, "direct", 1));
    });
    after(async function () {
      await cluster?.stop();
      await net?.stop();
    });

    it("reaches the quorum on chain through the workers' contribute transactions, then finalizes", async function () {
      const r = await runRequest(net, cluster, { app: cluster.examples.apps.sql, dataset: cluster.examples.customers, trust: 2, params: { query: QUERY }, requester: net.accounts[6] });
      expect((r.result as { rows: unknown[] }).rows).to.have.length(4);
      const hub = Hub__factory.connect(net.deployment.hub, net.provider);
      const commits = await hub.queryFilter(hub.filters.ContributionCommitted(r.taskId));
      expect(commits.length).to.be.at.least(2);
      for (const e of commits) {
        const tx = await net.provider.getTransaction(e.transactionHash);
        expect(tx!.from).to.equal(e.args.worker); // sent by the worker itself, not relayed by the scheduler
      }
      expect(r.task.timeline.map((e) => e.event)).to.not.include("contributed");
    });

    it("keeps serving after its workerpool order is used up: a fresh one is signed and matched", async function () {
      const r = await runRequest(net, cluster, { app: cluster.examples.apps.echo, trust: 1, params: { args: ["again"] }, requester: net.accounts[6] });
      expect(r.result).to.deep.equal({ args: ["again"] });
      // the pool's second deal: its first workerpool order (volume 1) was used up by the previous test
      expect(await Hub__factory.connect(net.deployment.hub, net.provider).dealCount()).to.equal(2n);
      expect((await Hub__factory.connect(net.deployment.hub, net.provider).viewDeal(r.dealId)).volume).to.equal(1n);
    });
  });
});
