/**
 * TaskDriver: walks a task through its stages (match, authorize, contribute, reveal, finalize, claim) with the
 * fixture's actors, and names the time helpers by the deadline they reach.
 */
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { ContractTransactionResponse, hexlify, id, toUtf8Bytes } from "ethers";
import { Fixture, OrderOverrides, OrderSet, TIMEREF, deployFixture, signedOrders } from "./fixture";
import { dealId as computeDealId, hashOrder, taskId as computeTaskId } from "../../sdk/eip712";
import { authorizationSignature, commitment, relayedContribution, relayedReveal } from "../../sdk/orders";

export interface Matched {
  dealId: string;
  volume: bigint;
  orders: OrderSet;
  tx: ContractTransactionResponse;
}

/** A result digest for tests: keccak256 of a label. */
export function digestOf(label: string): string {
  return id(label);
}

/** Results bytes for finalize: where the result lives off chain. */
export const RESULTS = hexlify(toUtf8Bytes("ipfs://result#digest"));

/** The deployed fixture (restored from its snapshot) and a driver for it. */
export async function setup() {
  const f = await loadFixture(deployFixture);
  return { f, d: new TaskDriver(f) };
}

export class TaskDriver {
  constructor(readonly f: Fixture) {}

  /** Signs four compatible orders and matches them (sent by `sender`, the requester by default). */
  async match(o: OrderOverrides = {}, sender?: HardhatEthersSigner): Promise<Matched> {
    const orders = await signedOrders(this.f, o);
    return this.matchOrders(orders, sender);
  }

  async matchOrders(orders: OrderSet, sender?: HardhatEthersSigner): Promise<Matched> {
    const hub = this.f.hub.connect(sender ?? this.f.requester);
    const tx = await hub.matchOrders(orders.app, orders.dataset, orders.workerpool, orders.request);
    const receipt = await tx.wait();
    const event = receipt!.logs
      .map((log) => {
        try {
          return hub.interface.parseLog(log);
        } catch {
          return null;
        }
      })
      .find((e) => e?.name === "DealMatched");
    return { dealId: event!.args.dealId, volume: event!.args.volume, orders, tx };
  }

  /** Matches with `trust` in the request (on top of the other overrides). */
  async matchTrust(trust: bigint, o: OrderOverrides = {}): Promise<Matched> {
    return this.match({ ...o, request: { trust, ...o.request } });
  }

  /**
   * Task 0 of a new trust-3, volume-2 deal in REVEALING: workers[3] commits `dissent` first, then workers[0..2]
   * commit `digest` and reach consensus; nobody revealed.
   */
  async consensusWithDissenter(digest: string, dissent: string) {
    const m = await this.match({ request: { trust: 3n, volume: 2n } });
    const taskId = this.taskId(m.dealId, 0);
    const winners = this.f.workers.slice(0, 3);
    const dissenter = this.f.workers[3];
    await this.contribute(dissenter, m.dealId, 0, dissent);
    for (const w of winners) await this.contribute(w, m.dealId, 0, digest);
    return { m, taskId, winners, dissenter };
  }

  taskId(dealId: string, index: bigint | number = 0n): string {
    return computeTaskId(dealId, index);
  }

  /** The EIP-712 hash of `m`'s request order: with the volume it had consumed before, it makes the deal id. */
  requestHash(m: Matched): string {
    return hashOrder(this.f.domain, "RequestOrder", m.orders.request);
  }

  /** The id the next deal of `m`'s request order would get (`m` being its first deal): no deal has it yet. */
  nextDealId(m: Matched): string {
    return computeDealId(this.requestHash(m), m.volume);
  }

  /** The scheduler's authorization for `worker` on a task. */
  async authorize(worker: HardhatEthersSigner, taskId: string, scheduler = this.f.scheduler): Promise<string> {
    return authorizationSignature(scheduler, this.f.domain, worker.address, taskId);
  }

  commitment(worker: HardhatEthersSigner, taskId: string, digest: string) {
    return commitment(worker.address, taskId, digest);
  }

  async contribute(worker: HardhatEthersSigner, dealId: string, index: bigint | number, digest: string) {
    const task = this.taskId(dealId, index);
    const { resultHash: h, resultSeal: s } = this.commitment(worker, task, digest);
    return this.f.hub.connect(worker).contribute(dealId, index, h, s, await this.authorize(worker, task));
  }

  async reveal(worker: HardhatEthersSigner, taskId: string, digest: string) {
    return this.f.hub.connect(worker).reveal(taskId, digest);
  }

  async finalize(taskId: string, results = "0x", resultsCallback = "0x", overrides: { gasLimit?: bigint } = {}) {
    return this.f.hub.connect(this.f.scheduler).finalize(taskId, results, resultsCallback, overrides);
  }

  /** A relayed contribution, signed by the worker. */
  async relayedContribution(worker: HardhatEthersSigner, dealId: string, index: bigint | number, digest: string) {
    return relayedContribution(worker, this.f.domain, dealId, index, digest);
  }

  /** A relayed reveal, signed by the worker. */
  async relayedReveal(worker: HardhatEthersSigner, taskId: string, digest: string) {
    return relayedReveal(worker, this.f.domain, taskId, digest);
  }

  async contributeAndFinalize(
    worker: HardhatEthersSigner,
    dealId: string,
    index: bigint | number,
    digest: string,
    results = "0x",
    resultsCallback = "0x",
  ) {
    const task = this.taskId(dealId, index);
    return this.f.hub
      .connect(worker)
      .contributeAndFinalize(dealId, index, digest, results, resultsCallback, await this.authorize(worker, task));
  }

  /** Contributes with `workers[i]` each giving `digests[i]`, then reveals with those that agree with consensus. */
  async runToConsensus(dealId: string, index: bigint | number, workers: HardhatEthersSigner[], digests: string[]) {
    for (let i = 0; i < workers.length; i++) await this.contribute(workers[i], dealId, index, digests[i]);
  }

  // ---------------------------------------------------------------- time

  async startTime(dealId: string): Promise<bigint> {
    return (await this.f.hub.viewDeal(dealId)).startTime;
  }

  async contributionDeadline(dealId: string): Promise<bigint> {
    return (await this.startTime(dealId)) + 7n * TIMEREF;
  }

  async finalDeadline(dealId: string): Promise<bigint> {
    return (await this.startTime(dealId)) + 10n * TIMEREF;
  }

  async revealDeadline(taskId: string): Promise<bigint> {
    return (await this.f.hub.viewTask(taskId)).revealDeadline;
  }

  /** Sets the next block's timestamp to `deadline + offset` (offset -1: the last second before it). */
  async nextBlockAt(deadline: bigint, offset = 0n): Promise<void> {
    await time.setNextBlockTimestamp(deadline + offset);
  }

  /** Mines a block at `deadline + offset`, so that views see that time. */
  async advanceTo(deadline: bigint, offset = 0n): Promise<void> {
    await time.increaseTo(deadline + offset);
  }

  async advanceToContributionDeadline(dealId: string, offset = 0n) {
    await this.advanceTo(await this.contributionDeadline(dealId), offset);
  }

  async advanceToRevealDeadline(taskId: string, offset = 0n) {
    await this.advanceTo(await this.revealDeadline(taskId), offset);
  }

  async advanceToFinalDeadline(dealId: string, offset = 0n) {
    await this.advanceTo(await this.finalDeadline(dealId), offset);
  }
}
