/**
 * The scheduler killed (SIGKILL, no shutdown) and restarted mid-task still finalizes: its state is in SQLite, the
 * workers reconnect, and the commits made while it was down arrive as pending commits on their next login.
 */
import { expect } from "chai";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../deploy/node";
import { startLocalNetwork, type LocalNetwork } from "../../deploy/network";
import { postRequest, publishAssetOrders, startCluster, taskOf, dealOf, waitForResult, type Cluster } from "../../deploy/cluster";
import { taskId as taskIdOf } from "../../sdk/eip712";
import { Hub__factory } from "../../typechain-types";

describe("end to end: the scheduler restarted mid-task", function () {
  this.timeout(180_000);
  let net: LocalNetwork;
  let cluster: Cluster;

  before(async function () {
    net = await startLocalNetwork({ port: 0, accounts: 8, deploymentsDir: mkdtempSync(join(tmpdir(), "concord-e2e-")) });
    // the quorum of 2 needs one of the slow workers: the scheduler dies while they run
    cluster = await startCluster(net, { workers: 3, behaviours: { 1: "slow:4000", 2: "slow:4000" }, schedulerPort: await freePort() });
    await publishAssetOrders(net, cluster);
  });

  after(async function () {
    await cluster?.stop();
    await net?.stop();
  });

  it("finalizes after a SIGKILL and a restart between the first commit and the quorum", async function () {
    const requestHash = await postRequest(net, cluster, {
      app: cluster.examples.apps.sieve,
      trust: 2,
      params: { args: ["--n", "50000"] },
      requester: net.accounts[6],
    });
    const taskId = taskIdOf(await dealOf(net, requestHash), 0);
    for (;;) {
      const view = await taskOf(cluster, taskId);
      if (view && Number(view.task.commits) >= 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await cluster.restartScheduler("SIGKILL");
    const r = await waitForResult(net, cluster, requestHash, { timeoutMs: 60_000 });
    expect(r.result).to.deep.equal({ largest: 49999, n: 50000, primes: 5133 });
    const hub = Hub__factory.connect(net.deployment.hub, net.provider);
    expect((await hub.viewTask(taskId)).status).to.equal(3n); // COMPLETED
    const revealed = (r.task.replicas as { revealed: boolean }[]).filter((x) => x.revealed);
    expect(revealed.length).to.be.at.least(2);
  });
});
