/**
 * The `concord` commands that work against a live network: `chain` (a local chain as a foreground process),
 * `request run` (sign, post to a scheduler's book, follow to the verified result), `task show`, `result get` and
 * `claim`. One local network with a scheduler and four workers, all real processes on loopback (deploy/cluster.ts),
 * serves the whole file; `chain` starts a chain of its own. `chain` and one request run as `node bin/concord`
 * processes; the other commands run in-process through `main()` (the same code, without a ts-node start-up each).
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JsonRpcProvider, Network, parseEther } from "ethers";
import { startLocalNetwork, type LocalNetwork } from "../../deploy/network";
import { publishAssetOrders, startCluster, type Cluster } from "../../deploy/cluster";
import { domain, signOrder, taskId as taskIdOf } from "../../sdk/eip712";
import { EMPTY_DATASET_ORDER, buildAppOrder, buildRequestOrder, buildWorkerpoolOrder } from "../../sdk/orders";
import { directoryDigest } from "../../sdk/encoding";
import { Hub__factory, WorkerpoolRegistry__factory } from "../../typechain-types";
import { ProgressLine } from "../../sdk/cli/request-progress";
import { ROOT, callCli, expectOneLineError, freePort, jsonOf, runCli } from "./harness";

const QUERY = "SELECT segment, avg(ltv) FROM customers GROUP BY segment";
const SEGMENTS = ["consumer", "enterprise", "smb", "startup"];
/** The order of the progress stages, by the first word of a progress line. */
const STAGES = ["waiting", "matched:", "initialized:", "commits", "consensus:", "revealed", "finalized"];

function withoutBook(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k]) => k !== "CONCORD_BOOK_URL"));
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

describe("concord chain, request, task, result and claim against live daemons", function () {
  this.timeout(180_000);

  describe("the progress line", function () {
    it("on a terminal rewrites one line in place and ends it once; elsewhere prints one line per change", function () {
      let tty = "";
      const inPlace = new ProgressLine((t) => (tty += t), true, 0);
      inPlace.update({ stage: "matched", text: "matched: deal 0x01" }, 500);
      inPlace.update({ stage: "matched", text: "matched: deal 0x01" }, 700);
      inPlace.update({ stage: "commits", text: "commits 1/3" }, 1200);
      inPlace.end();
      expect(tty).to.equal("\r[  0.5 s] matched: deal 0x01\x1b[K\r[  1.2 s] commits 1/3\x1b[K\n");
      let plain = "";
      const lines = new ProgressLine((t) => (plain += t), false, 0);
      lines.update({ stage: "matched", text: "matched: deal 0x01" }, 500);
      lines.update({ stage: "commits", text: "commits 1/3" }, 1200);
      lines.end();
      expect(plain).to.equal("[  0.5 s] matched: deal 0x01\n[  1.2 s] commits 1/3\n");
      expect(lines.history.map((h) => h.stage)).to.deep.equal(["matched", "commits"]);
    });
  });

  describe("concord chain", function () {
    it("starts a local chain with Concord deployed, prints one ready line, and stops cleanly on SIGINT", async function () {
      const port = await freePort();
      const deploymentsDir = mkdtempSync(join(tmpdir(), "concord-chain-"));
      const child = spawn(process.execPath, [join(ROOT, "bin", "concord"), "chain", "--port", String(port), "--accounts", "3", "--json"], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/", CONCORD_DEPLOYMENTS_DIR: deploymentsDir },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
        child.stdout.on("data", (c: Buffer) => {
          stdout += c.toString();
          if (stdout.includes("\n")) resolve(JSON.parse(stdout.split("\n")[0]) as Record<string, unknown>);
        });
        void exited.then((code) => reject(new Error(`concord chain exited (${code}) before it was ready:\n${stderr}`)));
      });
      try {
        expect(ready.event).to.equal("ready");
        expect(ready.rpcUrl).to.equal(`http://127.0.0.1:${port}`);
        expect(ready.accounts).to.have.length(3);
        expect(ready.mnemonic).to.equal("hardhat");
        expect(JSON.stringify(ready)).to.not.match(/privateKey|test test test/);
        const deployment = ready.deployment as { hub: string };
        expect(JSON.parse(readFileSync(String(ready.deploymentsFile), "utf8")).hub).to.equal(deployment.hub);
        expect(String(ready.deploymentsFile).startsWith(deploymentsDir)).to.equal(true);
        const network = Network.from(31337);
        const provider = new JsonRpcProvider(String(ready.rpcUrl), network, { staticNetwork: network });
        try {
          expect((await provider.getNetwork()).chainId).to.equal(31337n);
          expect(await provider.getCode(deployment.hub)).to.not.equal("0x");
        } finally {
          provider.destroy();
        }
      } finally {
        child.kill("SIGINT");
      }
      expect(await exited, stderr).to.equal(0);
      expect(stdout.trim().split("\n")).to.have.length(1); // --json: the ready line only
      expect(await portIsFree(port)).to.equal(true);
    });

    it("refuses a port in use with one line", async function () {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const { port } = server.address() as { port: number };
      try {
        expectOneLineError(await callCli(["chain", "--port", String(port)], {}), /port \d+ on 127\.0\.0\.1 is in use/);
      } finally {
        server.close();
      }
    });
  });

  describe("with a scheduler and four workers", function () {
    let net: LocalNetwork;
    let cluster: Cluster;
    let requester: Record<string, string>;
    let sql: Record<string, unknown>;

    before(async function () {
      net = await startLocalNetwork({ port: 0, accounts: 9, deploymentsDir: mkdtempSync(join(tmpdir(), "concord-daemons-")) });
      try {
        cluster = await startCluster(net, { workers: 4 });
        await publishAssetOrders(net, cluster);
      } catch (error) {
        await net.stop();
        throw error;
      }
      requester = { ...cluster.env, CONCORD_KEY: net.accounts[6].privateKey, CONCORD_BOOK_URL: cluster.schedulerUrl };
    });

    after(async function () {
      await cluster?.stop();
      await net?.stop();
    });

    it("runs the customers SQL query at trust 3 with --wait --json: one object with the verified rows", async function () {
      const ex = cluster.examples;
      sql = jsonOf(
        await runCli(
          ["--json", "request", "run", "--app", String(ex.apps.sql), "--dataset", String(ex.customers), "--query", QUERY, "--trust", "3", "--wait", "--timeout", "120"],
          requester,
        ),
      );
      const result = sql.result as { columns: string[]; rows: unknown[][] };
      expect(result.columns).to.deep.equal(["segment", "avg(ltv)"]);
      expect(result.rows.map((r) => r[0])).to.deep.equal(SEGMENTS);
      expect(sql.status).to.equal("completed");
      expect(sql.trust).to.equal("3");
      expect(sql.taskId).to.equal(taskIdOf(String(sql.dealId), 0));
      const hub = Hub__factory.connect(net.deployment.hub, net.provider);
      const task = await hub.viewTask(String(sql.taskId));
      expect(task.status).to.equal(3n); // COMPLETED
      expect(task.winnerCount).to.be.at.least(3n);
      expect(await hub.resultFor(String(sql.taskId))).to.equal(sql.resultDigest);
      expect((await net.provider.getTransactionReceipt(String(sql.finalizeTx)))?.status).to.equal(1);
      const stages = (sql.progress as { stage: string }[]).map((p) => p.stage);
      expect(stages[0]).to.equal("waiting");
      expect(stages[stages.length - 1]).to.equal("finalized");
    });

    it("runs at trust 1 without --json: one progress line per change, in stage order, then the result", async function () {
      const run = await callCli(
        ["request", "run", "--app", String(cluster.examples.apps.echo), "--arg", "hello", "--arg", "daemons", "--trust", "1", "--wait", "--timeout", "120"],
        requester,
      );
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout).to.not.include("\r"); // not a terminal: no in-place rewriting
      const progress = run.stdout.split("\n").filter((l) => /^\[\s*[\d.]+ s\] /.test(l)).map((l) => l.replace(/^\[\s*[\d.]+ s\] /, ""));
      const order = progress.map((l) => STAGES.indexOf(l.split(" ")[0]));
      expect(order).to.not.include(-1);
      expect([...order].sort((a, b) => a - b)).to.deep.equal(order);
      expect(progress[0]).to.equal("waiting for a match");
      expect(progress.some((l) => l.startsWith("matched: deal 0x"))).to.equal(true);
      expect(progress[progress.length - 1]).to.equal("finalized");
      expect(run.stdout).to.match(/finalized in \d+\.\d\d s/);
      expect(run.stdout).to.include(`result    {"args":["hello","daemons"]}`);
      expect(run.stdout).to.match(/task {6}0x[0-9a-f]{64} \(deal 0x[0-9a-f]{64}, index 0\)/);
      expect(run.stdout).to.match(/finalize {2}tx 0x[0-9a-f]{64}/);
    });

    it("task show: the task on chain (completed, contributors, deadlines) and the scheduler's replicas and timeline", async function () {
      const shown = jsonOf(await callCli(["--json", "task", "show", String(sql.taskId)], requester));
      expect(shown.status).to.equal("COMPLETED");
      expect(shown.dealId).to.equal(sql.dealId);
      expect(shown.resultDigest).to.equal(sql.resultDigest);
      expect(shown.claimable).to.equal(false);
      const contributors = shown.contributors as { worker: string; status: string }[];
      expect(contributors.filter((c) => c.status === "REVEALED").length).to.be.at.least(3);
      const deadlines = shown.deadlines as Record<string, string>;
      expect(BigInt(deadlines.final) - BigInt(deadlines.contribution)).to.equal(3n * 60n); // category 0: timeref 60 s
      const scheduler = shown.scheduler as { replicas: { revealed: boolean }[]; timeline: { event: string }[] };
      expect(scheduler.replicas.filter((r) => r.revealed).length).to.be.at.least(3);
      expect(scheduler.timeline.map((e) => e.event)).to.include.members(["consensus", "finalized"]);

      const human = await callCli(["task", "show", String(sql.taskId)], requester);
      expect(human.code, human.stderr).to.equal(0);
      expect(human.stdout).to.match(/status {8}COMPLETED/);
      expect(human.stdout).to.match(/timeline\n/);
      expect(human.stdout).to.match(/ms {2}finalized {2}tx=0x/);
    });

    it("result get <taskId>: resultFor on chain, the files from the scheduler named at finalize, saved once their digest checks", async function () {
      const out = join(mkdtempSync(join(tmpdir(), "concord-result-")), "out");
      // No book given: the URL comes from the TaskFinalized event.
      const got = jsonOf(await callCli(["--json", "result", "get", String(sql.taskId), "--out", out], withoutBook(requester)));
      expect(got.resultDigest).to.equal(sql.resultDigest);
      expect(got.resultFor).to.equal(sql.resultDigest);
      expect(got.book).to.equal(`${cluster.schedulerUrl}/`);
      expect(got.verified).to.equal(true);
      expect((got.result as { rows: unknown[][] }).rows.map((r) => r[0])).to.deep.equal(SEGMENTS);
      expect(readdirSync(out)).to.deep.equal(["result.json"]);
      expect(await directoryDigest(out)).to.equal(sql.resultDigest);
      expect(readdirSync(join(out, "..")).filter((f) => f.includes("partial"))).to.deep.equal([]);
    });

    it("result get <digest> --book: the stored result, shown as a table", async function () {
      const got = await callCli(["result", "get", String(sql.resultDigest), "--book", cluster.schedulerUrl], requester);
      expect(got.code, got.stderr).to.equal(0);
      expect(got.stdout).to.match(/result {4}segment +avg\(ltv\)/);
      for (const segment of SEGMENTS) expect(got.stdout).to.match(new RegExp(`\\n {12}${segment} +[0-9.]+`));
    });

    it("refuses bad input with one line", async function () {
      const ex = cluster.examples;
      expectOneLineError(await callCli(["request", "run", "--app", String(ex.apps.echo)], withoutBook(requester)), /give --book <url>/);
      expectOneLineError(await callCli(["request", "run", "--app", String(ex.apps.echo), "--params", "{nope"], requester), /invalid params: not JSON/);
      expectOneLineError(await callCli(["request", "run", "--app", String(ex.apps.echo), "--trust", "x"], requester), /--trust: /);
      expectOneLineError(
        await callCli(["request", "run", "--app", String(ex.apps.echo), "--book", "http://127.0.0.1:1"], requester),
        /cannot reach the order book at http:\/\/127\.0\.0\.1:1\/orders: connection refused/,
      );
      expectOneLineError(await callCli(["task", "show", "0x1234"], requester), /task id: expected 0x \+ 64 hex digits/);
      expectOneLineError(await callCli(["task", "show", `0x${"ab".repeat(32)}`], requester), /neither the chain nor the scheduler at .* knows task/);
      expectOneLineError(await callCli(["result", "get", `0x${"ab".repeat(32)}`], requester), /the scheduler at .* holds no result/);
      expectOneLineError(await callCli(["claim", "12345"], requester), /deal id \(0x \+ 64 hex\): expected 0x \+ 64 hex digits, got "12345"/);
      expectOneLineError(await callCli(["claim", `0x${"00".repeat(31)}39`], requester), /no deal 0x0{62}39 on chain/);
      expectOneLineError(await callCli(["claim", String(sql.dealId)], requester), /every task of deal 0x[0-9a-f]{64} is completed or already claimed: nothing to claim/);
    });

    describe("claim, for a deal no worker serves", function () {
      const PRICE = parseEther("1");
      let dealId: string;
      let requesterAddress: string;
      let claimer: Record<string, string>;
      let hub: ReturnType<typeof Hub__factory.connect>;

      before(async function () {
        // A second pool that no scheduler process serves: its deal is matched directly and never runs.
        const [owner, , , , , , , poolOwner, buyer] = net.accounts;
        requesterAddress = buyer.address;
        claimer = requester; // anyone may claim
        hub = Hub__factory.connect(net.deployment.hub, net.provider);
        const pools = WorkerpoolRegistry__factory.connect(net.deployment.workerpoolRegistry, poolOwner);
        const receipt = await (await pools.register(poolOwner.address, "idle pool", poolOwner.address, 30, 10)).wait();
        const pool = receipt!.logs.map((l) => pools.interface.parseLog(l)).find((e) => e?.name === "WorkerpoolRegistered")!.args.id as bigint;
        const dom = domain(net.deployment.chainId, net.deployment.hub);
        const app = cluster.examples.apps.echo;
        const appOrder = await signOrder(owner, dom, "AppOrder", buildAppOrder({ app, appprice: 0n }));
        const poolOrder = await signOrder(poolOwner, dom, "WorkerpoolOrder", buildWorkerpoolOrder({ workerpool: pool, workerpoolprice: PRICE, category: 0n }));
        const request = await signOrder(
          buyer,
          dom,
          "RequestOrder",
          buildRequestOrder({ app, appmaxprice: 0n, workerpool: pool, workerpoolmaxprice: PRICE, category: 0n, requester: buyer.address, nonce: await hub.orderNonce(buyer.address) }),
        );
        const matched = await (await hub.connect(buyer).matchOrders(appOrder, EMPTY_DATASET_ORDER, poolOrder, request)).wait();
        dealId = matched!.logs.map((l) => hub.interface.parseLog(l)).find((e) => e?.name === "DealMatched")!.args.dealId as string;
        expect((await hub.accountOf(buyer.address)).frozen).to.equal(PRICE);
      });

      it("refuses a claim before the final deadline with one line giving the deadline", async function () {
        const deal = await hub.viewDeal(dealId);
        const deadline = new Date(Number(deal.startTime + 10n * deal.timeref) * 1000).toISOString();
        const refused = await callCli(["claim", dealId, "0"], claimer);
        expectOneLineError(refused, /too early to claim deal 0x[0-9a-f]{64}: its final deadline is .* \(in \d+m \d+s\)$/);
        expect(refused.stderr).to.include(deadline);
        expectOneLineError(await callCli(["claim", dealId, "5"], claimer), /index 5 is out of range: deal 0x[0-9a-f]{64} has 1 task/);
        expectOneLineError(await callCli(["claim", dealId], {}), /give --key <hex> or set CONCORD_KEY/);
      });

      it("after the final deadline, claims the deal and refunds the requester's frozen payment", async function () {
        const deal = await hub.viewDeal(dealId);
        const latest = await net.provider.getBlock("latest");
        const final = deal.startTime + 10n * deal.timeref;
        await net.provider.send("evm_increaseTime", [Number(final - BigInt(latest!.timestamp)) + 1]);
        await net.provider.send("evm_mine", []);
        const before = await hub.accountOf(requesterAddress);

        const claimed = jsonOf(await callCli(["--json", "claim", dealId], claimer));
        expect(claimed.dealId).to.equal(dealId);
        expect(claimed.refund).to.equal(PRICE.toString());
        expect((claimed.claimed as { taskId: string }[]).map((c) => c.taskId)).to.deep.equal([taskIdOf(dealId, 0)]);
        const after = await hub.accountOf(requesterAddress);
        expect(after.frozen).to.equal(before.frozen - PRICE);
        expect(after.balance).to.equal(before.balance + PRICE);
        expect(claimed.frozen).to.equal(after.frozen.toString());
        expect((await hub.viewTask(taskIdOf(dealId, 0))).status).to.equal(4n); // FAILED

        expectOneLineError(await callCli(["claim", dealId], claimer), /nothing to claim/);
        expectOneLineError(await callCli(["claim", dealId, "0"], claimer), /task 0x[0-9a-f]{64} is FAILED: nothing to claim/);
        expectOneLineError(await callCli(["result", "get", taskIdOf(dealId, 0)], claimer), /has no result: it failed/);
      });
    });
  });
});
