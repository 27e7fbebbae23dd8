/**
 * End to end, failures, with real processes on loopback (deploy/cluster.ts): a straggler hedged away and cancelled, a
 * worker killed mid-task whose replica is reassigned, a worker restarted between its commit and its reveal that still
 * reveals, and a request no worker ever ran, refunded by a claim after the final deadline.
 *
 * One chain for the whole file, one cluster (scheduler + workers, its own pool) per scenario. The claim scenario moves
 * the chain's clock past the final deadline, so it runs last.
 */
import { expect } from "chai";
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseEther, type Wallet } from "ethers";
import { startLocalNetwork, type LocalNetwork } from "../../deploy/network";
import { publishAssetOrders, runRequest, spawnConcord, startCluster, type Cluster, type Daemon } from "../../deploy/cluster";
import { domain, hashOrder, signOrder, taskId as taskIdOf } from "../../sdk/eip712";
import { buildAppOrder, buildRequestOrder, orderToJson } from "../../sdk/orders";
import { formatParams } from "../../sdk/params";
import { Hub__factory, type Hub } from "../../typechain-types";

const ROOT = join(__dirname, "..", "..");
const TASK = { UNSET: 0n, ACTIVE: 1n, REVEALING: 2n, COMPLETED: 3n, FAILED: 4n };
const CONTRIBUTION = { UNSET: 0n, CONTRIBUTED: 1n, REVEALED: 2n, REJECTED: 3n };

interface ReplicaRow {
  replicaId: string;
  worker: string;
  status: string;
  resultHash: string | null;
  replacedBy: string | null;
  cancelReason: string | null;
  revealed: boolean;
}
interface TimelineRow {
  ms: number;
  event: string;
  worker?: string;
  replicaId?: string;
  reason?: string;
  [k: string]: unknown;
}
interface TaskView {
  task: { status: string; quorum: number; commits: number; resultDigest: string | null; failureReason: string | null };
  replicas: ReplicaRow[];
  timeline: TimelineRow[];
}

/** The daemons' pino lines (stderr), parsed, for assertions on what a worker did and for failure reports. */
class Logs {
  readonly lines: Record<string, unknown>[] = [];
  private partial = "";
  readonly sink = (chunk: string) => {
    this.partial += chunk;
    let nl: number;
    while ((nl = this.partial.indexOf("\n")) >= 0) {
      const text = this.partial.slice(0, nl);
      this.partial = this.partial.slice(nl + 1);
      try {
        this.lines.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        this.lines.push({ msg: text });
      }
    }
  };
  find(pred: (l: Record<string, unknown>) => boolean): Record<string, unknown> | undefined {
    return this.lines.find(pred);
  }
  /** the daemons' lines, compact, repeats folded: a story for a failure report */
  story(): string {
    const t0 = Number(this.lines[0]?.time ?? 0);
    const out: { text: string; key: string; n: number }[] = [];
    for (const l of this.lines) {
      const fields = { name: l.name ?? l.daemon, level: l.level, msg: l.msg, ...pick(l, ["worker", "replicaId", "err", "reason", "code", "state", "pending", "signal"]) };
      const key = JSON.stringify(fields);
      if (out.length && out[out.length - 1].key === key) out[out.length - 1].n++;
      else out.push({ key, n: 1, text: `${Number(l.time ?? t0) - t0} ${key}` });
    }
    return out
      .slice(-150)
      .map((o) => (o.n > 1 ? `${o.text} (×${o.n})` : o.text))
      .join("\n");
  }
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function taskView(cluster: Cluster, taskId: string): Promise<TaskView | undefined> {
  const res = await fetch(`${cluster.schedulerUrl}/tasks/${taskId}`);
  return res.ok ? ((await res.json()) as TaskView) : undefined;
}

/** Polls the scheduler's task view until `pred` holds; on timeout the error carries the last view (timeline). */
async function waitView(cluster: Cluster, taskId: string, what: string, pred: (v: TaskView) => boolean, timeoutMs = 60_000): Promise<TaskView> {
  const until = Date.now() + timeoutMs;
  let last: TaskView | undefined;
  for (;;) {
    last = await taskView(cluster, taskId);
    if (last && pred(last)) return last;
    if (last && last.task.status === "failed") throw new Error(`waiting for ${what}: task failed: ${last.task.failureReason}\n${showView(last)}`);
    if (Date.now() > until) throw new Error(`waiting for ${what}: timed out; last view:\n${last ? showView(last) : "(none)"}`);
    await sleep(100);
  }
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

interface Posted {
  dealId: string;
  taskId: string;
}

/** Signs a request and posts it to the scheduler's book, as runRequest does, and waits only for its deal. */
async function postRequest(
  net: LocalNetwork,
  cluster: Cluster,
  spec: { app: bigint; trust: number; args: string[]; requester: Wallet; appmaxprice?: bigint },
): Promise<Posted> {
  const d = net.deployment;
  const dom = domain(d.chainId, d.hub);
  const hub = Hub__factory.connect(d.hub, net.provider);
  const order = buildRequestOrder({
    app: spec.app,
    appmaxprice: spec.appmaxprice ?? 0n,
    workerpoolmaxprice: 0n,
    workerpool: cluster.examples.workerpool,
    category: 0n,
    trust: BigInt(spec.trust),
    requester: spec.requester.address,
    params: formatParams({ args: spec.args }),
    nonce: await hub.orderNonce(spec.requester.address),
  });
  const signed = await signOrder(spec.requester, dom, "RequestOrder", order);
  const requestHash = hashOrder(dom, "RequestOrder", order);
  const res = await fetch(`${cluster.schedulerUrl}/orders`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ kind: "RequestOrder", order: orderToJson(signed) }),
  });
  if (!res.ok) throw new Error(`POST /orders: ${res.status} ${await res.text()}`);
  const dealId = await waitFor("the deal", async () => {
    const events = await hub.queryFilter(hub.filters.DealMatched(undefined, requestHash), d.blockNumber);
    return events[0]?.args.dealId as string | undefined;
  });
  return { dealId, taskId: taskIdOf(dealId, 0).toLowerCase() };
}

/** A worker process like startCluster's, for an account and data dir of the test's choice. */
function startWorker(cluster: Cluster, account: Wallet, dataDir: string, stderr: (chunk: string) => void, behaviour = "honest"): Promise<Daemon> {
  return spawnConcord(
    ["worker", "start", "--scheduler", `${cluster.schedulerUrl.replace(/^http/, "ws")}/ws`, "--data-dir", dataDir, "--behaviour", behaviour, "--log-level", "info"],
    { ...cluster.env, CONCORD_KEY: account.privateKey },
    (l) => l.event === "connected",
    { stderr },
  );
}

/** A task view in a few lines: status, replicas, then one line per timeline event. */
function showView(v: TaskView): string {
  const short = (w?: string | null) => (w ? w.slice(0, 8) : "");
  const rest = (e: TimelineRow) =>
    JSON.stringify(Object.fromEntries(Object.entries(e).filter(([k, x]) => !["ms", "event", "worker", "replicaId", "tx"].includes(k) && x !== null)));
  return [
    `status ${v.task.status}, commits ${v.task.commits}/${v.task.quorum}, failure ${v.task.failureReason}`,
    ...v.replicas.map((r) => `  replica ${r.replicaId} ${short(r.worker)} ${r.status}${r.revealed ? " revealed" : ""}${r.replacedBy ? ` → ${r.replacedBy}` : ""}`),
    ...v.timeline.map((e) => `  ${String(e.ms).padStart(6)} ${e.event} ${short(e.worker)} ${e.replicaId ?? ""} ${rest(e)}`),
  ].join("\n");
}

const indexOf = (timeline: TimelineRow[], pred: (e: TimelineRow) => boolean) => timeline.findIndex(pred);

describe("end to end, failures: stragglers, crashes, restarts and refunds", function () {
  this.timeout(180_000);

  let net: LocalNetwork;
  let hub: Hub;
  before(async function () {
    net = await startLocalNetwork({ port: 0, accounts: 10, deploymentsDir: mkdtempSync(join(tmpdir(), "concord-e2e-failures-")) });
    hub = Hub__factory.connect(net.deployment.hub, net.provider);
  });
  after(async function () {
    await net?.stop();
  });

  /** One cluster per scenario; on failure, prints the daemons' story of the task under test. */
  function withCluster(workers: number, behaviours: Record<number, string>, opts: { assetOrders?: boolean } = {}) {
    const ctx = { cluster: undefined as unknown as Cluster, logs: new Logs(), taskId: undefined as string | undefined, extra: [] as Daemon[] };
    before(async function () {
      ctx.cluster = await startCluster(net, { workers, behaviours, logLevel: "info", stderr: ctx.logs.sink });
      if (opts.assetOrders !== false) await publishAssetOrders(net, ctx.cluster);
    });
    afterEach(async function () {
      if (this.currentTest?.state !== "failed") return;
      const view = ctx.taskId ? await taskView(ctx.cluster, ctx.taskId).catch(() => undefined) : undefined;
      console.log(`--- task view ${ctx.taskId ?? "(none)"}:\n${view ? showView(view) : "(none)"}\n--- daemons' logs:\n${ctx.logs.story()}`);
    });
    after(async function () {
      await Promise.all(ctx.extra.map((d) => d.stop()));
      await ctx.cluster?.stop();
    });
    return ctx;
  }

  describe("a slow worker among three (trust 2, fixed policy: k = 3)", function () {
    const ctx = withCluster(3, { 2: "slow:5000" });

    it("finalizes on the two fast commits and cancels the straggler's replica", async function () {
      const { cluster, logs } = ctx;
      const slow = net.accounts[4].address;
      const before = await hub.accountOf(slow);
      const r = await runRequest(net, cluster, { app: cluster.examples.apps.echo, trust: 2, params: { args: ["hedged", "away"] }, requester: net.accounts[8] });
      ctx.taskId = r.taskId;
      expect(r.result).to.deep.equal({ args: ["hedged", "away"] });

      // the scheduler's view: three replicas, the straggler's cancelled before it committed
      const replicas = r.task.replicas as ReplicaRow[];
      expect(replicas).to.have.length(3);
      const straggler = replicas.find((x) => x.worker === slow)!;
      expect(straggler, "the slow worker got a replica").to.not.equal(undefined);
      expect(straggler.status).to.equal("cancelled");
      expect(straggler.resultHash).to.equal(null);
      expect(replicas.filter((x) => x.revealed).map((x) => x.worker)).to.have.members([net.accounts[2].address, net.accounts[3].address]);
      expect(straggler.cancelReason).to.equal("quorum reached");
      const tl = r.task.timeline as TimelineRow[];
      const cancelledAt = indexOf(tl, (e) => e.event === "replica.cancelled");
      expect(tl[cancelledAt]).to.include({ worker: slow, replicaId: straggler.replicaId, reason: "quorum reached" });
      expect(cancelledAt).to.be.greaterThan(indexOf(tl, (e) => e.event === "consensus"));
      expect(cancelledAt).to.be.lessThan(indexOf(tl, (e) => e.event === "finalized"));
      expect(tl.some((e) => e.event === "replica.committed" && e.worker === slow)).to.equal(false);

      // the chain: completed by the two others; the straggler never contributed, nothing of its escrow moved
      expect((await hub.viewTask(r.taskId)).status).to.equal(TASK.COMPLETED);
      expect([...(await hub.contributorsOf(r.taskId))]).to.have.members([net.accounts[2].address, net.accounts[3].address]);
      expect((await hub.viewContribution(r.taskId, slow)).status).to.equal(CONTRIBUTION.UNSET);
      const after = await hub.accountOf(slow);
      expect([after.balance, after.frozen]).to.deep.equal([before.balance, before.frozen]);

      // the slow worker itself aborted the replica (its commit delay was cut short)
      await waitFor("the straggler's cancellation in its logs", () =>
        logs.find((l) => l.replicaId === straggler.replicaId && (l.msg === "replica cancelled" || l.msg === "cancel: replica aborted")),
      );
      expect(logs.find((l) => l.replicaId === straggler.replicaId && l.msg === "committed")).to.equal(undefined);
    });
  });

  describe("a worker killed mid-task (trust 2, three slow workers, a fourth joins)", function () {
    const ctx = withCluster(3, { 0: "slow:15000", 1: "slow:15000", 2: "slow:15000" });

    it("marks its replica lost, reassigns it to the new worker, and the task still finalizes", async function () {
      const { cluster, logs } = ctx;
      const victim = net.accounts[2].address;
      const newcomer = net.accounts[5];
      const before = await hub.accountOf(victim);
      const { taskId } = await postRequest(net, cluster, { app: cluster.examples.apps.echo, trust: 2, args: ["survives", "a", "crash"], requester: net.accounts[8] });
      ctx.taskId = taskId;
      await waitView(cluster, taskId, "three replicas dispatched", (v) => v.replicas.length === 3);

      // a spare worker joins (nothing to do yet: k = 3 replicas are live), then the victim dies without a word
      ctx.extra.push(await startWorker(cluster, newcomer, join(cluster.dataDir, "worker-newcomer"), logs.sink));
      cluster.workers[0].proc.kill("SIGKILL");

      const lostView = await waitView(cluster, taskId, "the victim's replica lost", (v) => v.replicas.some((r) => r.worker === victim && r.status === "lost"), 20_000);
      // (the newcomer is not slow: its replacement replica may already have committed by the time this view is read)
      const slowCommits = lostView.replicas.filter((r) => r.worker !== newcomer.address && r.resultHash !== null);
      expect(slowCommits, "the slow workers have not committed yet: the scenario is meaningful").to.deep.equal([]);
      const view = await waitView(cluster, taskId, "the task completed", (v) => v.task.status === "completed", 60_000);

      const lost = view.replicas.find((r) => r.worker === victim)!;
      expect(lost.status).to.equal("lost");
      expect(lost.resultHash).to.equal(null);
      const replacement = view.replicas.find((r) => r.worker === newcomer.address);
      expect(replacement, "a replica for the newcomer").to.not.equal(undefined);
      expect(lost.replacedBy).to.equal(replacement!.replicaId);
      expect(replacement!.revealed, "the replacement counts in the quorum").to.equal(true);
      const tl = view.timeline;
      const lostAt = indexOf(tl, (e) => e.event === "replica.lost" && e.worker === victim);
      const reassignedAt = indexOf(tl, (e) => e.event === "replica.reassigned" && e.replicaId === lost.replicaId);
      const assignedAt = indexOf(tl, (e) => e.event === "replica.assigned" && e.worker === newcomer.address);
      expect(lostAt).to.be.at.least(0);
      expect(tl[reassignedAt]).to.include({ to: replacement!.replicaId });
      expect(reassignedAt).to.be.greaterThan(lostAt);
      expect(assignedAt).to.be.greaterThan(lostAt);
      expect(indexOf(tl, (e) => e.event === "finalized")).to.be.greaterThan(assignedAt);

      expect((await hub.viewTask(taskId)).status).to.equal(TASK.COMPLETED);
      expect((await hub.viewContribution(taskId, victim)).status).to.equal(CONTRIBUTION.UNSET);
      expect((await hub.viewContribution(taskId, newcomer.address)).status).to.equal(CONTRIBUTION.REVEALED);
      const after = await hub.accountOf(victim);
      expect([after.balance, after.frozen]).to.deep.equal([before.balance, before.frozen]);
    });
  });

  describe("a worker restarted between its commit and its reveal (trust 2)", function () {
    const ctx = withCluster(2, { 1: "slow:15000" });

    it("reveals from its data dir when the slow worker's commit completes the quorum", async function () {
      const { cluster, logs } = ctx;
      const a = net.accounts[2];
      const b = net.accounts[3].address;
      const { taskId } = await postRequest(net, cluster, { app: cluster.examples.apps.echo, trust: 2, args: ["kept", "across", "restarts"], requester: net.accounts[8] });
      ctx.taskId = taskId;
      await waitView(cluster, taskId, "A's commit", (v) => v.timeline.some((e) => e.event === "replica.committed" && e.worker === a.address));

      // A stops gracefully and comes back as a new process: same key, same data dir
      await cluster.workers[0].stop();
      const restartedLogs = new Logs();
      const restarted = await startWorker(cluster, a, join(cluster.dataDir, "worker-0"), (chunk) => {
        restartedLogs.sink(chunk);
        logs.sink(chunk);
      });
      ctx.extra.push(restarted);
      const beforeB = await taskView(cluster, taskId);
      expect(beforeB!.timeline.some((e) => e.event === "replica.committed" && e.worker === b), "B has not committed before A is back").to.equal(false);

      await waitView(cluster, taskId, "B's commit", (v) => v.timeline.some((e) => e.event === "replica.committed" && e.worker === b), 30_000);
      const view = await waitView(cluster, taskId, "the task completed", (v) => v.task.status === "completed", 20_000);
      const ra = view.replicas.find((r) => r.worker === a.address)!;
      expect(ra.revealed).to.equal(true);
      expect(view.replicas.filter((r) => r.revealed).map((r) => r.worker)).to.have.members([a.address, b]);
      const tl = view.timeline;
      const commitB = indexOf(tl, (e) => e.event === "replica.committed" && e.worker === b);
      const askedA = indexOf(tl, (e) => e.event === "replica.reveal_requested" && e.worker === a.address);
      const revealA = indexOf(tl, (e) => e.event === "replica.revealed" && e.worker === a.address);
      expect(commitB).to.be.at.least(0);
      expect(askedA).to.be.greaterThan(commitB);
      expect(revealA).to.be.greaterThan(askedA);

      // the restarted process announced the pending commit and revealed it
      await waitFor("the restarted worker's reveal in its logs", () => restartedLogs.find((l) => l.msg === "revealed" && String(l.taskId).toLowerCase() === taskId));

      expect((await hub.viewTask(taskId)).status).to.equal(TASK.COMPLETED);
      expect((await hub.viewContribution(taskId, a.address)).status).to.equal(CONTRIBUTION.REVEALED);
      expect((await hub.viewContribution(taskId, b)).status).to.equal(CONTRIBUTION.REVEALED);
      expect(await hub.resultFor(taskId)).to.equal(view.task.resultDigest);
    });
  });

  // Last: it moves the chain's clock past the final deadline.
  describe("no worker at all", function () {
    const ctx = withCluster(0, {}, { assetOrders: false });

    it("after the final deadline, a claim refunds the requester's frozen payment", async function () {
      const { cluster } = ctx;
      const requester = net.accounts[9];
      const price = parseEther("2");
      // a priced app order, so that the deal freezes something of the requester's to refund
      const appOrder = await signOrder(
        net.accounts[0],
        domain(net.deployment.chainId, net.deployment.hub),
        "AppOrder",
        buildAppOrder({ app: cluster.examples.apps.echo, appprice: price, volume: 10n }),
      );
      const res = await fetch(`${cluster.schedulerUrl}/orders`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ kind: "AppOrder", order: orderToJson(appOrder) }),
      });
      if (!res.ok) throw new Error(`POST /orders (AppOrder): ${res.status} ${await res.text()}`);

      const before = await hub.accountOf(requester.address);
      const { dealId, taskId } = await postRequest(net, cluster, { app: cluster.examples.apps.echo, trust: 1, args: ["nobody", "home"], requester, appmaxprice: price });
      ctx.taskId = taskId;
      const matched = await hub.accountOf(requester.address);
      expect(matched.frozen - before.frozen).to.equal(price);
      expect(before.balance - matched.balance).to.equal(price);

      const view = await waitView(cluster, taskId, "the scheduler knows the task", () => true, 20_000);
      expect(view.replicas).to.have.length(0);
      expect(view.task.status).to.equal("pending");
      expect((await hub.viewTask(taskId)).status).to.equal(TASK.UNSET);

      // too early: the Hub refuses
      await expect(hub.connect(requester).claim(dealId, 0)).to.be.revertedWithCustomError(hub, "HubDeadlineNotReached");

      const deal = await hub.viewDeal(dealId);
      await net.provider.send("evm_increaseTime", [10 * Number(deal.timeref) + 1]);
      await net.provider.send("evm_mine", []);

      const concord = (args: string[]) =>
        promisify(execFile)(process.execPath, [join(ROOT, "bin", "concord"), ...args], {
          cwd: ROOT,
          env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/", ...cluster.env, CONCORD_KEY: requester.privateKey },
        });
      const help = (await concord(["--help"])).stdout;
      if (/^\s+claim\b/m.test(help)) {
        const out = JSON.parse((await concord(["claim", dealId, "0", "--json"])).stdout) as Record<string, unknown>;
        expect((out.claimed as { taskId: string }[]).map((c) => c.taskId.toLowerCase())).to.deep.equal([taskId]);
      } else {
        console.log("      (no `concord claim` command yet: claiming with hub.claim)");
        await (await hub.connect(requester).claim(dealId, 0)).wait();
      }

      expect((await hub.viewTask(taskId)).status).to.equal(TASK.FAILED);
      const refunded = await hub.accountOf(requester.address);
      expect(refunded.frozen).to.equal(before.frozen);
      expect(refunded.balance).to.equal(before.balance);
      await expect(hub.resultFor(taskId)).to.be.reverted;
      // the scheduler's watcher sees the claim
      const claimed = await waitView(cluster, taskId, "the claim in the scheduler's view", (v) => v.task.status === "claimed", 20_000);
      expect(claimed.timeline.some((e) => e.event === "chain.TaskClaimed")).to.equal(true);
    });
  });
});
