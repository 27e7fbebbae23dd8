/**
 * Invariants of the Hub, checked by seeded random scenarios (fast-check) against the real contracts on the Hardhat
 * network. `docs/invariants.md` lists every invariant and names the check below that enforces it.
 *
 * Each run deploys nothing new: `loadFixture(deployFixture)` reverts to the deployed fixture, registers a second
 * workerpool with random ratios (its scheduler consents to it), then plays a random list of actions (deposits,
 * withdrawals, matches, contributions, reveals, finalizations, reopenings, claims, the scheduler withdrawing or giving
 * back its consent to the second pool, time jumps). Actions hold raw numbers that are resolved against the
 * state of the run when they execute, with a bias towards targets where the action can succeed, so both the happy
 * paths and the rejections happen often and shrinking keeps a failing list valid.
 *
 * A reference model predicts every action: either its exact custom error (name and arguments) or its effects (every
 * account's balance, frozen funds and score, the kitty, every task and contribution, the events). After every step
 * the chain is compared with the model, and the structural invariants are checked from chain reads alone.
 *
 * Reproduce a failure with the seed fast-check prints: `FC_SEED=<seed> npx hardhat test <this file>`. A failure
 * message ends with the step-by-step trace of the failing run. `FC_RUNS=<n>` changes the number of runs,
 * `FC_SHRINK=1` shrinks a failing scenario to a minimal one (slow), `FC_STATS=1` prints how often each action
 * succeeded or failed, and with which error.
 */
import { expect } from "chai";
import fc from "fast-check";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { ContractTransactionResponse, TransactionReceipt, ZeroHash, dataSlice, id, parseEther } from "ethers";
import {
  KITTY_MIN,
  MIN_WORKER_STAKE,
  SCHEDULER_REWARD_RATIO,
  TIMEREF,
  WORKER_STAKE_RATIO,
  deployFixture,
  signedOrders,
} from "../helpers/fixture";
import type { Fixture } from "../helpers/fixture";
import {
  dealId as dealIdOf,
  hashOrder,
  resultHash,
  resultSeal,
  signMessage,
  taskId as taskIdOf,
} from "../../sdk/eip712";

// ------------------------------------------------------------------------------------------------ configuration

const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : 20240611;
const RUNS = process.env.FC_RUNS !== undefined ? Number(process.env.FC_RUNS) : 30;
/** Shrinking replays a failing scenario hundreds of times (minutes); opt in with FC_SHRINK=1 for a minimal one. */
const SHRINK = process.env.FC_SHRINK === "1";
const GAS = { gasLimit: 8_000_000n };
const SCHEDULER_STAKE_RATIO = 30n;
const KITTY_RATIO = 10n;
const MAX_DEALS = 4;
/** With FC_STATS=1 the random-scenario test prints how often each action succeeded or failed, and why. */
const STATS = process.env.FC_STATS === "1" ? new Map<string, number>() : undefined;
const DIGESTS = ["result:a", "result:b", "result:c"].map((label) => id(label));
/** A deal id no deal has: no request order hashes to this label's hash. */
const UNKNOWN_DEAL = dealIdOf(id("a request order nobody signed"));

const enum S {
  UNSET = 0,
  ACTIVE = 1,
  REVEALING = 2,
  COMPLETED = 3,
  FAILED = 4,
}
const enum C {
  UNSET = 0,
  CONTRIBUTED = 1,
  REVEALED = 2,
  REJECTED = 3,
}
const STATUS_NAMES = ["UNSET", "ACTIVE", "REVEALING", "COMPLETED", "FAILED"];
const isFinal = (s: S) => s === S.COMPLETED || s === S.FAILED;
const bit = (...statuses: S[]) => statuses.reduce((mask, s) => mask | (1n << BigInt(s)), 0n);
const min = (a: bigint, b: bigint) => (a < b ? a : b);
const max = (a: bigint, b: bigint) => (a > b ? a : b);
const lower = (a: string) => a.toLowerCase();

// ------------------------------------------------------------------------------------------------ reward arithmetic

function split(poolPrice: bigint, rewardRatio: bigint, winners: bigint): { perWorker: bigint; toScheduler: bigint } {
  const workersPart = poolPrice - (poolPrice * rewardRatio) / 100n;
  const perWorker = workersPart / winners;
  return { perWorker, toScheduler: poolPrice - perWorker * winners };
}

/**
 * `min(kitty, max(kittyMin, kitty·10/100), seized)`, `kitty` already holding what the finalization seized: a scheduler
 * earns from the kitty at most the stakes of the losers that very finalization caught (nothing without a loser).
 */
function kittyReward(kitty: bigint, seized: bigint): bigint {
  return min(min(kitty, max(KITTY_MIN, (kitty * KITTY_RATIO) / 100n)), seized);
}

// ------------------------------------------------------------------------------------------------ actions

interface MatchAction {
  kind: "match";
  requester: number; // 0..2: the funded requester, 3: the extra requester (no deposit at start)
  pool: number; // 0: the fixture's pool, 1: this run's pool with random ratios
  trust: number;
  volume: number;
  dataset: boolean;
  appPrice: bigint;
  datasetPrice: bigint;
  poolPrice: bigint;
}

type Action =
  | MatchAction
  | { kind: "deposit"; who: number; amount: bigint }
  | { kind: "withdraw"; who: number; percent: number }
  | { kind: "initialize"; task: number; sender: number }
  /** `mole`: the worker commits the resultHash of digest 2 (the rarest) but a seal made for digest 0 (the commonest). */
  | { kind: "contribute"; task: number; worker: number; digest: number; mole: boolean }
  | { kind: "reveal"; task: number; worker: number; honest: boolean; digest: number }
  /** Several workers contribute to the same task, one transaction (and one checked step) each. */
  | { kind: "contributeGroup"; task: number; worker: number; digests: number[] }
  /**
   * The winning group of a task reveals, one transaction each; `silent` workers (bit i: the i-th) do not. Moles
   * (outside the group, with a seal made for the consensus digest) try to reveal it first.
   */
  | { kind: "revealGroup"; task: number; silent: number; finalize: boolean }
  /** A winning group stays silent: the clock goes to its reveal deadline and the scheduler reopens the task. */
  | { kind: "abandon"; task: number }
  | { kind: "finalize"; task: number; sender: number }
  | { kind: "contributeAndFinalize"; task: number; worker: number; digest: number }
  | { kind: "reopen"; task: number; sender: number }
  | { kind: "claim"; task: number; sender: number }
  | { kind: "claimDeal"; deal: number; sender: number }
  | { kind: "wait"; seconds: number }
  | { kind: "waitForDeadline"; task: number; deadline: "contribution" | "reveal" | "final"; offset: number }
  /** The scheduler gives or withdraws its consent to serve the second pool. */
  | { kind: "consent"; consent: boolean };

const pick = fc.nat({ max: 9999 });
const digestArb = fc.oneof(
  { arbitrary: fc.constant(0), weight: 6 },
  { arbitrary: fc.constant(1), weight: 3 },
  { arbitrary: fc.constant(2), weight: 1 },
);
const priceArb = (maxEther: string) => fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: parseEther(maxEther) }));
const poolPriceArb = fc.oneof(
  { arbitrary: fc.constant(0n), weight: 2 },
  { arbitrary: fc.constant(parseEther("10")), weight: 2 },
  { arbitrary: fc.bigInt({ min: 1n, max: parseEther("20") }), weight: 3 },
);

function matchArb(requester: fc.Arbitrary<number>): fc.Arbitrary<MatchAction> {
  return fc.record({
    kind: fc.constant("match" as const),
    requester,
    pool: fc.nat({ max: 1 }),
    trust: fc.integer({ min: 0, max: 3 }),
    volume: fc.integer({ min: 1, max: 3 }),
    dataset: fc.boolean(),
    appPrice: priceArb("3"),
    datasetPrice: priceArb("3"),
    poolPrice: poolPriceArb,
  });
}

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { arbitrary: matchArb(fc.nat({ max: 3 })), weight: 4 },
  {
    arbitrary: fc.record({
      kind: fc.constant("deposit" as const),
      who: pick,
      amount: fc.oneof(
        { arbitrary: fc.constant(0n), weight: 1 },
        { arbitrary: fc.bigInt({ min: 1n, max: parseEther("60") }), weight: 5 },
      ),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("withdraw" as const),
      who: pick,
      percent: fc.integer({ min: 0, max: 120 }),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant("initialize" as const), task: pick, sender: pick }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant("contribute" as const),
      task: pick,
      worker: pick,
      digest: digestArb,
      mole: fc.oneof({ arbitrary: fc.constant(false), weight: 4 }, { arbitrary: fc.constant(true), weight: 1 }),
    }),
    weight: 22,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("reveal" as const),
      task: pick,
      worker: pick,
      honest: fc.oneof({ arbitrary: fc.constant(true), weight: 6 }, { arbitrary: fc.constant(false), weight: 1 }),
      digest: digestArb,
    }),
    weight: 14,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("contributeGroup" as const),
      task: pick,
      worker: pick,
      digests: fc.array(digestArb, { minLength: 1, maxLength: 4 }),
    }),
    weight: 8,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("revealGroup" as const),
      task: pick,
      silent: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.nat({ max: 7 }), weight: 2 }),
      finalize: fc.boolean(),
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ kind: fc.constant("finalize" as const), task: pick, sender: pick }), weight: 12 },
  { arbitrary: fc.record({ kind: fc.constant("abandon" as const), task: pick }), weight: 3 },
  {
    arbitrary: fc.record({
      kind: fc.constant("contributeAndFinalize" as const),
      task: pick,
      worker: pick,
      digest: digestArb,
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ kind: fc.constant("reopen" as const), task: pick, sender: pick }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("claim" as const), task: pick, sender: pick }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("claimDeal" as const), deal: pick, sender: pick }), weight: 2 },
  {
    arbitrary: fc.record({ kind: fc.constant("wait" as const), seconds: fc.integer({ min: 1, max: 400 }) }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("waitForDeadline" as const),
      task: pick,
      deadline: fc.oneof(
        { arbitrary: fc.constant("reveal" as const), weight: 4 },
        { arbitrary: fc.constant("contribution" as const), weight: 1 },
        { arbitrary: fc.constant("final" as const), weight: 1 },
      ),
      offset: fc.integer({ min: -1, max: 1 }),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("consent" as const),
      consent: fc.oneof({ arbitrary: fc.constant(true), weight: 1 }, { arbitrary: fc.constant(false), weight: 1 }),
    }),
    weight: 1,
  },
);

const scenarioArb = fc.record({
  /** Pool price of a prelude deal left to be claimed, whose scheduler stake (30%) fills the kitty; 0: no prelude. */
  kittyPrelude: fc.oneof(
    { arbitrary: fc.constant(0n), weight: 1 },
    { arbitrary: fc.bigInt({ min: parseEther("1"), max: parseEther("60") }), weight: 1 },
  ),
  workers: fc.integer({ min: 4, max: 6 }),
  workerStakeRatio: fc.integer({ min: 0, max: 100 }),
  schedulerRewardRatio: fc.integer({ min: 0, max: 100 }),
  first: matchArb(fc.constant(0)),
  second: matchArb(fc.nat({ max: 3 })),
  actions: fc.array(actionArb, { minLength: 30, maxLength: 60 }),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

// ------------------------------------------------------------------------------------------------ reference model

interface MAccount {
  balance: bigint;
  frozen: bigint;
  score: bigint;
}

interface MContribution {
  worker: string;
  /** The digest behind the committed resultHash. */
  digest: string;
  /** The digest the seal was made for: `digest`, except for a mole. */
  sealDigest: string;
  hash: string;
  status: C;
}

interface MTask {
  id: string;
  deal: MDeal;
  index: bigint;
  status: S;
  contributions: MContribution[];
  groups: Map<string, number[]>;
  winnerCount: bigint;
  revealCount: bigint;
  revealDeadline: bigint;
  consensusHash: string;
  resultDigest: string;
}

interface MDeal {
  id: string;
  requester: string;
  scheduler: string;
  appPrice: bigint;
  datasetPrice: bigint;
  poolPrice: bigint;
  price: bigint;
  trust: bigint;
  quorum: bigint;
  volume: bigint;
  start: bigint;
  contributionDeadline: bigint;
  finalDeadline: bigint;
  workerStakeRatio: bigint;
  rewardRatio: bigint;
  workerStake: bigint;
  schedulerStake: bigint;
  tasks: MTask[];
}

/** What an action is about: a task of a deal (possibly unknown or out of range). */
interface Target {
  dealId: string;
  index: bigint;
  taskId: string;
  deal?: MDeal;
  task?: MTask;
}

class Model {
  readonly accounts = new Map<string, MAccount>();
  readonly wallets = new Map<string, bigint>();
  readonly deals: MDeal[] = [];
  /** Task ids that actions targeted without a deal behind them: they must stay UNSET. */
  readonly strayTasks = new Set<string>();
  kitty = 0n;
  hubTokens = 0n;
  clock = 0n;
  /** Whether the scheduler consents to serve the second pool (its orders match only then). */
  pool2Consent = true;

  constructor(
    readonly appOwner: string,
    readonly datasetOwner: string,
  ) {}

  account(address: string): MAccount {
    const key = lower(address);
    let a = this.accounts.get(key);
    if (!a) {
      a = { balance: 0n, frozen: 0n, score: 0n };
      this.accounts.set(key, a);
    }
    return a;
  }

  tasks(): MTask[] {
    return this.deals.flatMap((d) => d.tasks);
  }

  credit(address: string, amount: bigint) {
    this.account(address).balance += amount;
  }

  lock(address: string, amount: bigint) {
    const a = this.account(address);
    if (a.balance < amount) throw new Error(`model: lock of ${amount} exceeds ${address}'s balance`);
    a.balance -= amount;
    a.frozen += amount;
  }

  unlock(address: string, amount: bigint) {
    const a = this.account(address);
    a.frozen -= amount;
    a.balance += amount;
  }

  spendFrozen(address: string, amount: bigint) {
    this.account(address).frozen -= amount;
  }

  seize(address: string, amount: bigint) {
    this.account(address).frozen -= amount;
    this.kitty += amount;
  }

  payOwners(deal: MDeal, winners: bigint): { perWorker: bigint; toScheduler: bigint } {
    this.spendFrozen(deal.requester, deal.price);
    this.credit(this.appOwner, deal.appPrice);
    this.credit(this.datasetOwner, deal.datasetPrice);
    return split(deal.poolPrice, deal.rewardRatio, winners);
  }

  payWinner(worker: string, stake: bigint, amount: bigint) {
    const a = this.account(worker);
    a.frozen -= stake;
    a.balance += stake + amount;
    if (a.score < 0xffffffffn) a.score += 1n;
  }

  /** `seized`: the stakes this finalization seized (already in the kitty). */
  payScheduler(deal: MDeal, share: bigint, seized: bigint) {
    this.unlock(deal.scheduler, deal.schedulerStake);
    const reward = kittyReward(this.kitty, seized);
    this.kitty -= reward;
    this.credit(deal.scheduler, share + reward);
  }
}

// ------------------------------------------------------------------------------------------------ chain reads

interface TaskView {
  status: bigint;
  dealId: string;
  index: bigint;
  contributionDeadline: bigint;
  revealDeadline: bigint;
  finalDeadline: bigint;
  contributorCount: bigint;
  winnerCount: bigint;
  revealCount: bigint;
  consensusHash: string;
  resultDigest: string;
}

interface ContributionView {
  worker: string;
  status: bigint;
  sealPrefix: string;
  stake: bigint;
}

interface ChainState {
  accounts: Record<string, { balance: bigint; frozen: bigint; score: bigint }>;
  wallets: Record<string, bigint>;
  kitty: bigint;
  hubTokens: bigint;
  dealCount: bigint;
  tasks: Record<string, { view: TaskView; contributions: ContributionView[] }>;
}

const UNSET_VIEW: TaskView = {
  status: 0n,
  dealId: ZeroHash,
  index: 0n,
  contributionDeadline: 0n,
  revealDeadline: 0n,
  finalDeadline: 0n,
  contributorCount: 0n,
  winnerCount: 0n,
  revealCount: 0n,
  consensusHash: ZeroHash,
  resultDigest: ZeroHash,
};

// ------------------------------------------------------------------------------------------------ the run

type Expected = { error: [string, ...unknown[]] } | { apply: () => string[] };

interface Plan {
  label: string;
  /** The action kind that decides which status transitions are allowed. */
  kind: Action["kind"];
  expected: Expected;
  send: () => Promise<ContractTransactionResponse>;
  /** What makes this instance interesting, for the FC_STATS tally. */
  note?: string;
}

type TxResult = { ok: true; receipt: TransactionReceipt } | { ok: false; name: string; args: unknown[] };

/** Addresses and hashes compare case-insensitively, enum members as the bigints the ABI decodes. */
function norm(value: unknown): unknown {
  if (typeof value === "string") return lower(value);
  if (typeof value === "number") return BigInt(value);
  return value;
}

function fmt(name: string, args: unknown[]): string {
  return `${name}(${args.map((a) => String(a)).join(", ")})`;
}

function revertData(error: unknown): string | undefined {
  const e = error as { data?: unknown; error?: { data?: unknown }; info?: { error?: { data?: unknown } } };
  for (const candidate of [e?.data, e?.error?.data, e?.info?.error?.data]) {
    if (typeof candidate === "string" && candidate.startsWith("0x")) return candidate;
  }
  return undefined;
}

class Run {
  readonly model: Model;
  readonly trace: string[] = [];
  /** How many TaskFinalized / TaskClaimed events each task emitted over the run. */
  readonly finalized = new Map<string, number>();
  readonly claimed = new Map<string, number>();
  readonly participants: HardhatEthersSigner[];
  readonly workers: HardhatEthersSigner[];
  readonly requesters: HardhatEthersSigner[];
  readonly everyone: HardhatEthersSigner[];
  state!: ChainState;
  private readonly pools: bigint[];
  /** Deals matched by the prelude, on top of the MAX_DEALS the random actions may match. */
  private preludeDeals = 0;

  constructor(
    readonly f: Fixture,
    workerCount: number,
    readonly pool2: { workerStakeRatio: bigint; rewardRatio: bigint },
  ) {
    this.model = new Model(f.appOwner.address, f.datasetOwner.address);
    this.workers = f.workers.slice(0, workerCount);
    this.requesters = [f.requester, f.requester, f.requester, f.other];
    this.participants = [f.requester, f.other, f.scheduler, ...this.workers, f.appOwner, f.datasetOwner];
    this.everyone = [f.owner, f.appOwner, f.datasetOwner, f.poolOwner, f.scheduler, f.requester, f.other, ...f.workers];
    this.pools = [f.workerpoolId, 2n];
  }

  // ---------------------------------------------------------------- setup

  async start() {
    const { f } = this;
    await f.workerpools.register(
      f.poolOwner.address,
      "fuzz pool",
      f.scheduler.address,
      Number(this.pool2.workerStakeRatio),
      Number(this.pool2.rewardRatio),
    );
    // Registered by the protocol owner: its orders match only once the scheduler consents.
    await f.workerpools.connect(f.scheduler).setSchedulerConsent(2n, true);
    this.state = await this.read();
    for (const [address, a] of Object.entries(this.state.accounts)) Object.assign(this.model.account(address), a);
    for (const [address, w] of Object.entries(this.state.wallets)) this.model.wallets.set(address, w);
    this.model.kitty = this.state.kitty;
    this.model.hubTokens = this.state.hubTokens;
    this.model.clock = BigInt(await time.latest());
  }

  /**
   * The prelude: a single-task deal on the fixture's pool with only a pool price (`poolPrice`), left untouched and
   * claimed at its final deadline, so that the kitty starts the random actions holding its scheduler's stake (and a
   * finalization with a cheap loser then finds its kitty reward capped by the stakes it seized). Checked like any
   * other step.
   */
  async fillKitty(poolPrice: bigint) {
    const m = this.model;
    const action: MatchAction = {
      kind: "match",
      requester: 0,
      pool: 0,
      trust: 1,
      volume: 1,
      dataset: false,
      appPrice: 0n,
      datasetPrice: 0n,
      poolPrice,
    };
    let t = m.clock + 1n;
    await this.execute((await this.planMatch(action, t))!, t, -1);
    const deal = m.deals[m.deals.length - 1];
    await this.waitUntil(deal.finalDeadline);
    t = m.clock + 1n;
    await this.execute(this.planClaimDeal(deal, this.f.other, t), t, -1);
    expect(m.kitty, "the prelude filled the kitty with the scheduler's stake").to.equal(deal.schedulerStake);
    this.preludeDeals = m.deals.length;
  }

  // ---------------------------------------------------------------- reading the chain

  async read(): Promise<ChainState> {
    const { hub, token } = this.f;
    const hubAddress = await hub.getAddress();
    const accounts: ChainState["accounts"] = {};
    const wallets: ChainState["wallets"] = {};
    for (const s of this.everyone) {
      const [balance, frozen] = await hub.accountOf(s.address);
      accounts[lower(s.address)] = { balance, frozen, score: await hub.scoreOf(s.address) };
      wallets[lower(s.address)] = await token.balanceOf(s.address);
    }
    const tasks: ChainState["tasks"] = {};
    const ids = new Set([...this.model.tasks().map((t) => t.id), ...this.model.strayTasks]);
    for (const taskId of ids) {
      const v = await hub.viewTask(taskId);
      const view: TaskView = {
        status: v.status,
        dealId: lower(v.dealId),
        index: v.index,
        contributionDeadline: v.contributionDeadline,
        revealDeadline: v.revealDeadline,
        finalDeadline: v.finalDeadline,
        contributorCount: v.contributorCount,
        winnerCount: v.winnerCount,
        revealCount: v.revealCount,
        consensusHash: lower(v.consensusHash),
        resultDigest: lower(v.resultDigest),
      };
      const contributions: ContributionView[] = [];
      for (const worker of await hub.contributorsOf(taskId)) {
        const c = await hub.viewContribution(taskId, worker);
        contributions.push({
          worker: lower(worker),
          status: c.status,
          sealPrefix: lower(c.sealPrefix),
          stake: c.stake,
        });
      }
      tasks[taskId] = { view, contributions };
    }
    return {
      accounts,
      wallets,
      kitty: await hub.kitty(),
      hubTokens: await token.balanceOf(hubAddress),
      dealCount: await hub.dealCount(),
      tasks,
    };
  }

  /** The chain state the model expects, in the shape of `read()`. */
  expectedState(): ChainState {
    const m = this.model;
    const accounts: ChainState["accounts"] = {};
    const wallets: ChainState["wallets"] = {};
    for (const s of this.everyone) {
      const a = m.account(s.address);
      accounts[lower(s.address)] = { balance: a.balance, frozen: a.frozen, score: a.score };
      wallets[lower(s.address)] = m.wallets.get(lower(s.address)) ?? 0n;
    }
    const tasks: ChainState["tasks"] = {};
    for (const t of m.tasks()) {
      const view: TaskView =
        t.status === S.UNSET
          ? UNSET_VIEW
          : {
              status: BigInt(t.status),
              dealId: lower(t.deal.id),
              index: t.index,
              contributionDeadline: t.deal.contributionDeadline,
              revealDeadline: t.revealDeadline,
              finalDeadline: t.deal.finalDeadline,
              contributorCount: BigInt(t.contributions.length),
              winnerCount: t.winnerCount,
              revealCount: t.revealCount,
              consensusHash: lower(t.consensusHash),
              resultDigest: lower(t.resultDigest),
            };
      const contributions = t.contributions.map((c) => ({
        worker: lower(c.worker),
        status: BigInt(c.status),
        sealPrefix: lower(dataSlice(resultSeal(c.worker, t.id, c.sealDigest), 0, 11)),
        stake: t.deal.workerStake,
      }));
      tasks[t.id] = { view, contributions };
    }
    // A stray id may have become a real task since (the unknown deal n+1 got matched): the real task wins.
    for (const taskId of m.strayTasks) tasks[taskId] ??= { view: UNSET_VIEW, contributions: [] };
    return { accounts, wallets, kitty: m.kitty, hubTokens: m.hubTokens, dealCount: BigInt(m.deals.length), tasks };
  }

  // ---------------------------------------------------------------- picking targets

  private target(deal: MDeal | undefined, dealId: string, index: bigint): Target {
    const taskId = taskIdOf(dealId, index);
    const task = deal && index < deal.volume ? deal.tasks[Number(index)] : undefined;
    if (!task) this.model.strayTasks.add(taskId);
    return { dealId, index, taskId, deal, task };
  }

  /**
   * One task in ten is drawn from everything (including an unknown deal and an out-of-range index); otherwise from
   * the preferred tasks, and with a `rank`, two times in three from the best-ranked ones.
   */
  private pickTask(n: number, prefer: (t: MTask) => boolean, rank?: (t: MTask) => number): Target {
    const m = this.model;
    const tasks = m.tasks();
    if (tasks.length === 0 || n % 10 === 0) {
      const wild: Target[] = tasks.map((t) => this.target(t.deal, t.deal.id, t.index));
      wild.push(this.target(undefined, UNKNOWN_DEAL, 0n));
      if (m.deals.length > 0) {
        const d = m.deals[n % m.deals.length];
        wild.push(this.target(d, d.id, d.volume));
      }
      return wild[Math.floor(n / 10) % wild.length];
    }
    let preferred = tasks.filter(prefer);
    if (rank && preferred.length > 0 && n % 3 !== 0) {
      const best = Math.max(...preferred.map(rank));
      preferred = preferred.filter((t) => rank(t) === best);
    }
    const from = preferred.length > 0 ? preferred : tasks;
    const t = from[Math.floor(n / 10) % from.length];
    return this.target(t.deal, t.deal.id, t.index);
  }

  /** One pick in six is any worker of the run; otherwise a preferred one when there is one. */
  private pickWorker(n: number, prefer: (w: HardhatEthersSigner) => boolean): HardhatEthersSigner {
    const preferred = this.workers.filter(prefer);
    const from = n % 6 === 0 || preferred.length === 0 ? this.workers : preferred;
    return from[Math.floor(n / 6) % from.length];
  }

  /** The deal's scheduler, or (one time in eight) a worker pretending to be it. */
  private pickSchedulerOrIntruder(n: number): HardhatEthersSigner {
    return n % 8 === 0 ? this.workers[Math.floor(n / 8) % this.workers.length] : this.f.scheduler;
  }

  private contributionOf(task: MTask | undefined, worker: string): MContribution | undefined {
    return task?.contributions.find((c) => lower(c.worker) === lower(worker));
  }

  // ---------------------------------------------------------------- planning an action

  /** Resolves an action against the current state and predicts its outcome; undefined for a no-op. */
  async plan(action: Action, t: bigint): Promise<Plan | undefined> {
    const { f, model: m } = this;
    const hub = f.hub;
    switch (action.kind) {
      case "deposit": {
        const who = this.participants[action.who % this.participants.length];
        const wallet = m.wallets.get(lower(who.address)) ?? 0n;
        const amount = min(action.amount, wallet);
        const label = `deposit ${amount} by ${who.address}`;
        const send = () => hub.connect(who).deposit(amount, GAS);
        if (amount === 0n) return { label, kind: action.kind, send, expected: { error: ["ClerkInvalidAmount", 0n] } };
        return {
          label,
          kind: action.kind,
          send,
          expected: {
            apply: () => {
              m.wallets.set(lower(who.address), wallet - amount);
              m.credit(who.address, amount);
              m.hubTokens += amount;
              return [`Deposited:${lower(who.address)}`];
            },
          },
        };
      }
      case "withdraw": {
        const who = this.participants[action.who % this.participants.length];
        const balance = m.account(who.address).balance;
        const amount = (balance * BigInt(action.percent)) / 100n + (action.percent > 100 ? 1n : 0n);
        const label = `withdraw ${amount} by ${who.address}`;
        const send = () => hub.connect(who).withdraw(amount, GAS);
        let expected: Expected;
        if (amount === 0n) expected = { error: ["ClerkInvalidAmount", 0n] };
        else if (balance < amount) expected = { error: ["ClerkInsufficientBalance", who.address, balance, amount] };
        else {
          expected = {
            apply: () => {
              m.account(who.address).balance -= amount;
              m.wallets.set(lower(who.address), (m.wallets.get(lower(who.address)) ?? 0n) + amount);
              m.hubTokens -= amount;
              return [`Withdrawn:${lower(who.address)}`];
            },
          };
        }
        return { label, kind: action.kind, send, expected };
      }
      case "match":
        return this.planMatch(action, t);
      case "initialize": {
        const target = this.pickTask(action.task, (x) => x.status === S.UNSET && t < x.deal.contributionDeadline);
        const sender = this.pickSchedulerOrIntruder(action.sender);
        const label = `initialize ${this.describe(target)} by ${sender.address}`;
        const send = () => hub.connect(sender).initialize(target.dealId, target.index, GAS);
        const missing = this.dealError(target);
        if (missing) return { label, kind: action.kind, send, expected: { error: missing } };
        const deal = target.deal!;
        const task = target.task!;
        let expected: Expected;
        if (lower(sender.address) !== lower(deal.scheduler)) {
          expected = { error: ["HubNotScheduler", deal.id, sender.address] };
        } else if (task.status !== S.UNSET) {
          expected = { error: ["HubUnexpectedTaskStatus", task.id, task.status, bit(S.UNSET)] };
        } else if (t >= deal.contributionDeadline) {
          expected = { error: ["HubDeadlineReached", task.id, deal.contributionDeadline] };
        } else {
          expected = {
            apply: () => {
              task.status = S.ACTIVE;
              return [`TaskInitialized:${task.id}`];
            },
          };
        }
        return { label, kind: action.kind, send, expected };
      }
      case "contribute": {
        const target = this.pickContributionTask(action.task, t);
        return this.planContribute(target, this.pickContributor(action.worker, target), action.digest, t, action.mole);
      }
      case "reveal": {
        const target = this.pickRevealTask(action.task, t);
        // A member of the winning group that has not revealed yet, or a mole whose seal was made for the consensus
        // digest (one pick in six: any worker).
        const worker = this.pickWorker(
          action.worker,
          (w) => this.isPendingWinner(target.task, w.address) || this.isMoleOnConsensus(target.task, w.address),
        );
        return this.planReveal(target, worker, action.honest, action.digest, t);
      }
      case "finalize": {
        const target = this.pickTask(
          action.task,
          (x) => x.status === S.REVEALING && x.revealCount > 0n,
          // Ready ones first: every winner revealed, or the reveal deadline passed.
          (x) => (x.revealCount === x.winnerCount || t >= x.revealDeadline ? 1 : 0),
        );
        return this.planFinalize(target, this.pickSchedulerOrIntruder(action.sender), t);
      }
      case "contributeAndFinalize": {
        const target = this.pickTask(
          action.task,
          (x) =>
            x.deal.trust <= 1n &&
            (x.status === S.UNSET || (x.status === S.ACTIVE && x.contributions.length === 0)) &&
            t < x.deal.contributionDeadline,
        );
        const worker = this.pickWorker(action.worker, () => true);
        const digest = DIGESTS[action.digest];
        const authorization = await signMessage(f.scheduler, f.domain, "Authorization", {
          worker: worker.address,
          taskId: target.taskId,
        });
        const label = `contributeAndFinalize ${this.describe(target)} by ${worker.address}`;
        const send = () =>
          hub
            .connect(worker)
            .contributeAndFinalize(target.dealId, target.index, digest, "0x", "0x", authorization, GAS);
        const missing = this.dealError(target);
        if (missing) return { label, kind: action.kind, send, expected: { error: missing } };
        const deal = target.deal!;
        const task = target.task!;
        const balance = m.account(worker.address).balance;
        let expected: Expected;
        if (deal.trust > 1n) {
          expected = { error: ["HubTrustTooHigh", task.id, deal.trust] };
        } else if (!(task.status === S.UNSET || (task.status === S.ACTIVE && task.contributions.length === 0))) {
          expected = { error: ["HubUnexpectedTaskStatus", task.id, task.status, bit(S.UNSET, S.ACTIVE)] };
        } else if (t >= deal.contributionDeadline) {
          expected = { error: ["HubDeadlineReached", task.id, deal.contributionDeadline] };
        } else if (balance < deal.workerStake) {
          expected = { error: ["ClerkInsufficientBalance", worker.address, balance, deal.workerStake] };
        } else {
          expected = {
            apply: () => {
              task.status = S.COMPLETED;
              task.winnerCount = 1n;
              task.revealCount = 1n;
              task.revealDeadline = 0n;
              task.consensusHash = resultHash(task.id, digest);
              task.resultDigest = digest;
              const { perWorker, toScheduler } = m.payOwners(deal, 1n);
              m.payWinner(worker.address, 0n, perWorker);
              m.payScheduler(deal, toScheduler, 0n); // nothing seized: no kitty reward
              return [`ContributionRevealed:${task.id}`, `TaskFinalized:${task.id}`];
            },
          };
        }
        return { label, kind: action.kind, send, expected };
      }
      case "reopen": {
        const target = this.pickTask(
          action.task,
          (x) => x.status === S.REVEALING && x.revealCount === 0n && t >= x.revealDeadline,
        );
        return this.planReopen(target, this.pickSchedulerOrIntruder(action.sender), t);
      }
      case "claim": {
        const target = this.pickTask(action.task, (x) => !isFinal(x.status) && t >= x.deal.finalDeadline);
        const sender = this.everyone[action.sender % this.everyone.length];
        const label = `claim ${this.describe(target)} by ${sender.address}`;
        const send = () => hub.connect(sender).claim(target.dealId, target.index, GAS);
        let note: string | undefined;
        const missing = this.dealError(target);
        if (missing) return { label, kind: action.kind, send, expected: { error: missing } };
        const task = target.task!;
        let expected: Expected;
        if (isFinal(task.status)) {
          expected = { error: ["HubUnexpectedTaskStatus", task.id, task.status, bit(S.UNSET, S.ACTIVE, S.REVEALING)] };
        } else if (t < task.deal.finalDeadline) {
          expected = { error: ["HubDeadlineNotReached", task.id, task.deal.finalDeadline] };
        } else {
          expected = { apply: () => this.applyClaim(task) };
          if (task.contributions.length > 0) note = "unlocks contributions";
        }
        return { label, kind: action.kind, send, expected, note };
      }
      case "claimDeal": {
        const deals = m.deals.filter((d) => t >= d.finalDeadline && d.tasks.some((x) => !isFinal(x.status)));
        const from = deals.length > 0 ? deals : m.deals;
        const deal =
          action.deal % 10 === 0 || from.length === 0 ? undefined : from[Math.floor(action.deal / 10) % from.length];
        return this.planClaimDeal(deal, this.everyone[action.sender % this.everyone.length], t);
      }
      case "consent": {
        const consent = action.consent;
        const label = `setSchedulerConsent(2, ${consent}) by the scheduler`;
        const send = () => f.workerpools.connect(f.scheduler).setSchedulerConsent(2n, consent, GAS);
        // The registry's event is not the Hub's: the Hub emits nothing.
        const apply = () => {
          m.pool2Consent = consent;
          return [];
        };
        return { label, kind: action.kind, send, expected: { apply } };
      }
      case "wait":
      case "waitForDeadline":
      case "contributeGroup":
      case "revealGroup":
      case "abandon":
        return undefined;
    }
  }

  /** UNSET or ACTIVE tasks before their contribution deadline, the one with the most contributions first. */
  private pickContributionTask(n: number, t: bigint): Target {
    return this.pickTask(
      n,
      (x) =>
        (x.status === S.UNSET || x.status === S.ACTIVE) &&
        t < x.deal.contributionDeadline &&
        this.workers.some((w) => !this.contributionOf(x, w.address)),
      // Concentrating on one task makes consensus and dissent both happen often.
      (x) => x.contributions.length,
    );
  }

  private pickContributor(n: number, target: Target): HardhatEthersSigner {
    return this.pickWorker(n, (w) => !this.contributionOf(target.task, w.address));
  }

  private async planContribute(
    target: Target,
    worker: HardhatEthersSigner,
    digestIndex: number,
    t: bigint,
    mole = false,
  ): Promise<Plan> {
    const { f, model: m } = this;
    const hub = f.hub;
    // A mole commits another result's hash with a seal made for digest 0, hoping to reveal digest 0 if it wins.
    const digest = DIGESTS[mole ? 2 : digestIndex];
    const sealDigest = mole ? DIGESTS[0] : digest;
    const h = resultHash(target.taskId, digest);
    const seal = resultSeal(worker.address, target.taskId, sealDigest);
    const authorization = await signMessage(f.scheduler, f.domain, "Authorization", {
      worker: worker.address,
      taskId: target.taskId,
    });
    const label =
      `contribute ${this.describe(target)} by ${worker.address} with digest ${DIGESTS.indexOf(digest)}` +
      (mole ? ", seal for digest 0 (mole)" : "");
    const send = () => hub.connect(worker).contribute(target.dealId, target.index, h, seal, authorization, GAS);
    const missing = this.dealError(target);
    if (missing) return { label, kind: "contribute", send, expected: { error: missing } };
    const deal = target.deal!;
    const task = target.task!;
    const balance = m.account(worker.address).balance;
    let expected: Expected;
    if (task.status === S.UNSET && t >= deal.contributionDeadline) {
      expected = { error: ["HubDeadlineReached", task.id, deal.contributionDeadline] };
    } else if (task.status !== S.UNSET && task.status !== S.ACTIVE) {
      expected = { error: ["HubUnexpectedTaskStatus", task.id, task.status, bit(S.ACTIVE)] };
    } else if (t >= deal.contributionDeadline) {
      expected = { error: ["HubDeadlineReached", task.id, deal.contributionDeadline] };
    } else if (this.contributionOf(task, worker.address)) {
      expected = { error: ["HubAlreadyContributed", task.id, worker.address] };
    } else if (balance < deal.workerStake) {
      expected = { error: ["ClerkInsufficientBalance", worker.address, balance, deal.workerStake] };
    } else {
      expected = {
        apply: () => {
          const events: string[] = [];
          if (task.status === S.UNSET) {
            task.status = S.ACTIVE;
            events.push(`TaskInitialized:${task.id}`);
          }
          m.lock(worker.address, deal.workerStake);
          const position = task.contributions.length;
          task.contributions.push({ worker: worker.address, digest, sealDigest, hash: h, status: C.CONTRIBUTED });
          events.push(`ContributionCommitted:${task.id}`);
          const group = task.groups.get(h) ?? [];
          group.push(position);
          task.groups.set(h, group);
          if (BigInt(group.length) >= deal.quorum) {
            task.status = S.REVEALING;
            task.winnerCount = deal.quorum;
            task.revealDeadline = t + 2n * TIMEREF;
            task.consensusHash = h;
            events.push(`ConsensusReached:${task.id}`);
          }
          return events;
        },
      };
    }
    return { label, kind: "contribute", send, expected, note: mole ? "mole" : undefined };
  }

  private pickRevealTask(n: number, t: bigint): Target {
    return this.pickTask(
      n,
      (x) =>
        x.status === S.REVEALING && t < x.revealDeadline && x.contributions.some((c) => c.status === C.CONTRIBUTED),
    );
  }

  /** A member of the task's winning group that has not revealed yet. */
  private isPendingWinner(task: MTask | undefined, worker: string): boolean {
    const c = this.contributionOf(task, worker);
    return c?.status === C.CONTRIBUTED && !!task && this.isMember(task, c);
  }

  /** A contribution outside the winning group whose seal was made for the consensus digest. */
  private isMoleOnConsensus(task: MTask | undefined, worker: string): boolean {
    const c = this.contributionOf(task, worker);
    return (
      c?.status === C.CONTRIBUTED &&
      !!task &&
      !this.isMember(task, c) &&
      resultHash(task.id, c.sealDigest) === task.consensusHash
    );
  }

  /** Whether a contribution's position is in the membership of the group that reached consensus. */
  private isMember(task: MTask, c: MContribution): boolean {
    return (task.groups.get(task.consensusHash) ?? []).includes(task.contributions.indexOf(c));
  }

  /**
   * `honest`: the worker reveals the digest behind its own seal (a mole: the one it hopes to pass off); otherwise
   * another one.
   */
  private planReveal(
    target: Target,
    worker: HardhatEthersSigner,
    honest: boolean,
    digestIndex: number,
    t: bigint,
  ): Plan {
    const hub = this.f.hub;
    const task = target.task;
    const own = this.contributionOf(task, worker.address);
    let digest = DIGESTS[digestIndex];
    if (own && honest) digest = own.sealDigest;
    if (own && !honest && digest === own.sealDigest) digest = DIGESTS[(DIGESTS.indexOf(own.sealDigest) + 1) % 3];
    const label = `reveal ${this.describe(target)} by ${worker.address} with digest ${DIGESTS.indexOf(digest)}`;
    const send = () => hub.connect(worker).reveal(target.taskId, digest, GAS);
    const status = task?.status ?? S.UNSET;
    let expected: Expected;
    if (!task || status !== S.REVEALING) {
      expected = { error: ["HubUnexpectedTaskStatus", target.taskId, status, bit(S.REVEALING)] };
    } else if (t >= task.revealDeadline) {
      expected = { error: ["HubDeadlineReached", task.id, task.revealDeadline] };
    } else if (!own) {
      expected = { error: ["HubUnexpectedContributionStatus", task.id, worker.address, C.UNSET] };
    } else if (own.status !== C.CONTRIBUTED) {
      expected = { error: ["HubUnexpectedContributionStatus", task.id, worker.address, own.status] };
    } else if (
      !this.isMember(task, own) ||
      resultHash(task.id, digest) !== task.consensusHash ||
      digest !== own.sealDigest
    ) {
      // Only a member of the winning group, revealing the consensus digest behind its own seal.
      expected = { error: ["HubInvalidReveal", task.id, worker.address] };
    } else {
      expected = {
        apply: () => {
          own.status = C.REVEALED;
          if (task.revealCount === 0n) task.resultDigest = digest;
          task.revealCount += 1n;
          return [`ContributionRevealed:${task.id}`];
        },
      };
    }
    // A mole passing off the digest behind its seal, which is not the one behind its hash.
    const mole = own !== undefined && digest === own.sealDigest && digest !== own.digest;
    return { label, kind: "reveal", send, expected, note: mole ? "mole" : undefined };
  }

  private planFinalize(target: Target, sender: HardhatEthersSigner, t: bigint): Plan {
    const { f, model: m } = this;
    const hub = f.hub;
    const task = target.task;
    const label = `finalize ${this.describe(target)} by ${sender.address}`;
    const send = () => hub.connect(sender).finalize(target.taskId, "0x", "0x", GAS);
    const plan: Plan = { label, kind: "finalize", send, expected: { apply: () => [] } };
    const status = task?.status ?? S.UNSET;
    let expected: Expected;
    if (!task || status !== S.REVEALING) {
      expected = { error: ["HubUnexpectedTaskStatus", target.taskId, status, bit(S.REVEALING)] };
    } else if (lower(sender.address) !== lower(task.deal.scheduler)) {
      expected = { error: ["HubNotScheduler", task.deal.id, sender.address] };
    } else if (t >= task.deal.finalDeadline) {
      expected = { error: ["HubDeadlineReached", task.id, task.deal.finalDeadline] };
    } else if (task.revealCount === 0n || (task.revealCount < task.winnerCount && t < task.revealDeadline)) {
      expected = { error: ["HubRevealsPending", task.id, task.revealCount, task.winnerCount] };
    } else {
      expected = {
        apply: () => {
          const deal = task.deal;
          const seized = deal.workerStake * BigInt(task.contributions.filter((c) => c.status !== C.REVEALED).length);
          const kitty = m.kitty + seized;
          plan.note = [
            task.contributions.some((c) => c.status === C.REJECTED) ? "rejected group seized" : "",
            task.contributions.some((c) => c.status === C.CONTRIBUTED) ? "losers seized" : "",
            kittyReward(kitty, seized) < min(kitty, max(KITTY_MIN, (kitty * KITTY_RATIO) / 100n))
              ? seized === 0n
                ? "no kitty reward: nothing seized"
                : "kitty reward capped by the seized stakes"
              : "",
          ]
            .filter(Boolean)
            .join(", ");
          task.status = S.COMPLETED;
          const { perWorker, toScheduler } = m.payOwners(deal, task.revealCount);
          for (const c of task.contributions) {
            if (c.status === C.REVEALED) {
              m.payWinner(c.worker, deal.workerStake, perWorker);
            } else {
              m.seize(c.worker, deal.workerStake);
              const a = m.account(c.worker);
              a.score = a.score / 2n;
            }
          }
          m.payScheduler(deal, toScheduler, seized);
          return [`TaskFinalized:${task.id}`];
        },
      };
    }
    plan.expected = expected;
    return plan;
  }

  private planReopen(target: Target, sender: HardhatEthersSigner, t: bigint): Plan {
    const hub = this.f.hub;
    const task = target.task;
    const label = `reopen ${this.describe(target)} by ${sender.address}`;
    const send = () => hub.connect(sender).reopen(target.taskId, GAS);
    const status = task?.status ?? S.UNSET;
    let expected: Expected;
    if (!task || status !== S.REVEALING) {
      expected = { error: ["HubUnexpectedTaskStatus", target.taskId, status, bit(S.REVEALING)] };
    } else if (lower(sender.address) !== lower(task.deal.scheduler)) {
      expected = { error: ["HubNotScheduler", task.deal.id, sender.address] };
    } else if (t < task.revealDeadline) {
      expected = { error: ["HubDeadlineNotReached", task.id, task.revealDeadline] };
    } else if (t >= task.deal.finalDeadline) {
      expected = { error: ["HubDeadlineReached", task.id, task.deal.finalDeadline] };
    } else if (task.revealCount !== 0n) {
      expected = { error: ["HubHasReveals", task.id, task.revealCount] };
    } else {
      expected = {
        apply: () => {
          for (const position of task.groups.get(task.consensusHash) ?? []) {
            task.contributions[position].status = C.REJECTED;
          }
          task.groups.delete(task.consensusHash);
          task.status = S.ACTIVE;
          task.winnerCount = 0n;
          task.revealDeadline = 0n;
          task.consensusHash = ZeroHash;
          return [`TaskReopened:${task.id}`];
        },
      };
    }
    return { label, kind: "reopen", send, expected };
  }

  private async planMatch(action: MatchAction, t: bigint): Promise<Plan | undefined> {
    const { f, model: m } = this;
    if (m.deals.length >= MAX_DEALS + this.preludeDeals) return undefined;
    const requester = this.requesters[action.requester];
    const poolId = this.pools[action.pool];
    const workerStakeRatio = action.pool === 0 ? WORKER_STAKE_RATIO : this.pool2.workerStakeRatio;
    const rewardRatio = action.pool === 0 ? SCHEDULER_REWARD_RATIO : this.pool2.rewardRatio;
    const datasetPrice = action.dataset ? action.datasetPrice : 0n;
    const orders = await signedOrders(f, {
      app: { appprice: action.appPrice },
      dataset: { datasetprice: action.datasetPrice },
      workerpool: { workerpool: poolId, workerpoolprice: action.poolPrice },
      request: {
        requester: requester.address,
        beneficiary: requester.address,
        appmaxprice: action.appPrice,
        dataset: action.dataset ? f.datasetId : 0n,
        datasetmaxprice: action.datasetPrice,
        workerpoolmaxprice: action.poolPrice,
        volume: BigInt(action.volume),
        trust: BigInt(action.trust),
      },
      requesterSigner: requester,
    });
    const volume = BigInt(action.volume);
    const price = action.appPrice + datasetPrice + action.poolPrice;
    const schedulerStake = (action.poolPrice * SCHEDULER_STAKE_RATIO) / 100n;
    const requesterBalance = m.account(requester.address).balance;
    const schedulerBalance = m.account(f.scheduler.address).balance;
    const label =
      `match by ${requester.address}: pool ${poolId}, trust ${action.trust}, volume ${action.volume}, ` +
      `prices ${action.appPrice}/${datasetPrice}/${action.poolPrice}${action.dataset ? "" : " (no dataset)"}`;
    const send = () =>
      f.hub.connect(requester).matchOrders(orders.app, orders.dataset, orders.workerpool, orders.request, GAS);
    // `canMatch` must announce exactly what `matchOrders` will do (these orders never expire, so its block time is
    // irrelevant); the prediction below is then checked against `matchOrders` itself.
    const [ok, reason] = await f.hub.canMatch(orders.app, orders.dataset, orders.workerpool, orders.request);
    const announced = ok
      ? "success"
      : fmt(f.hub.interface.parseError(reason)!.name, [...f.hub.interface.parseError(reason)!.args].map(norm));
    let expected: Expected;
    if (action.pool === 1 && !m.pool2Consent) {
      expected = { error: ["ClerkSchedulerWithoutConsent", poolId, f.scheduler.address] };
    } else if (requesterBalance < price * volume) {
      expected = { error: ["ClerkInsufficientBalance", requester.address, requesterBalance, price * volume] };
    } else if (schedulerBalance < schedulerStake * volume) {
      expected = {
        error: ["ClerkInsufficientBalance", f.scheduler.address, schedulerBalance, schedulerStake * volume],
      };
    } else {
      expected = {
        apply: () => {
          // Fresh orders: the request order's first deal.
          const dealId = dealIdOf(hashOrder(f.domain, "RequestOrder", orders.request));
          const workerStake = max(MIN_WORKER_STAKE, (action.poolPrice * workerStakeRatio) / 100n);
          const deal: MDeal = {
            id: dealId,
            requester: requester.address,
            scheduler: f.scheduler.address,
            appPrice: action.appPrice,
            datasetPrice,
            poolPrice: action.poolPrice,
            price,
            trust: BigInt(action.trust),
            quorum: action.trust === 0 ? 1n : BigInt(action.trust),
            volume,
            start: t,
            contributionDeadline: t + 7n * TIMEREF,
            finalDeadline: t + 10n * TIMEREF,
            workerStakeRatio,
            rewardRatio,
            workerStake,
            schedulerStake,
            tasks: [],
          };
          for (let i = 0n; i < volume; i++) {
            deal.tasks.push({
              id: taskIdOf(dealId, i),
              deal,
              index: i,
              status: S.UNSET,
              contributions: [],
              groups: new Map(),
              winnerCount: 0n,
              revealCount: 0n,
              revealDeadline: 0n,
              consensusHash: ZeroHash,
              resultDigest: ZeroHash,
            });
          }
          m.lock(requester.address, price * volume);
          m.lock(f.scheduler.address, schedulerStake * volume);
          m.deals.push(deal);
          return [`DealMatched:${lower(dealId)}`];
        },
      };
    }
    const predicted = "error" in expected ? fmt(expected.error[0], expected.error.slice(1).map(norm)) : "success";
    expect(announced, `${label}: canMatch announces the outcome of matchOrders`).to.equal(predicted);
    return { label, kind: "match", send, expected };
  }

  planClaimDeal(deal: MDeal | undefined, sender: HardhatEthersSigner, t: bigint): Plan {
    const dealId = deal ? deal.id : UNKNOWN_DEAL;
    const label = `claimDeal ${deal ? this.dealName(dealId) : "of an unknown deal"} by ${sender.address}`;
    const send = () => this.f.hub.connect(sender).claimDeal(dealId, GAS);
    let expected: Expected;
    if (!deal) expected = { error: ["HubUnknownDeal", dealId] };
    else if (t < deal.finalDeadline) {
      expected = { error: ["HubDeadlineNotReached", taskIdOf(deal.id, 0), deal.finalDeadline] };
    } else {
      expected = { apply: () => deal.tasks.filter((x) => !isFinal(x.status)).flatMap((x) => this.applyClaim(x)) };
    }
    return { label, kind: "claimDeal", send, expected };
  }

  private applyClaim(task: MTask): string[] {
    const m = this.model;
    const deal = task.deal;
    task.status = S.FAILED;
    m.unlock(deal.requester, deal.price);
    m.seize(deal.scheduler, deal.schedulerStake);
    for (const c of task.contributions) {
      if (c.status === C.REJECTED) {
        m.seize(c.worker, deal.workerStake);
        const a = m.account(c.worker);
        a.score = a.score / 2n;
      } else {
        m.unlock(c.worker, deal.workerStake);
      }
    }
    return [`TaskClaimed:${task.id}`];
  }

  /** The `_dealOf` check: unknown deal or index out of range. */
  private dealError(target: Target): [string, ...unknown[]] | undefined {
    if (!target.deal) return ["HubUnknownDeal", target.dealId];
    if (!target.task) return ["HubTaskIndexOutOfRange", target.dealId, target.index, target.deal.volume];
    return undefined;
  }

  private describe(target: Target): string {
    if (!target.deal) return `task ${target.index} of unknown deal ${target.dealId}`;
    const status = target.task ? STATUS_NAMES[target.task.status] : "out of range";
    return `task ${target.index} of deal ${this.dealName(target.dealId)} (${status})`;
  }

  /** A matched deal as the labels name it: n for the run's n-th deal (deal ids are hashes, not a sequence). */
  private dealName(dealId: string): string {
    return `${this.model.deals.findIndex((d) => d.id === dealId) + 1}`;
  }

  // ---------------------------------------------------------------- executing

  private async send(t: bigint, send: () => Promise<ContractTransactionResponse>): Promise<TxResult> {
    await time.setNextBlockTimestamp(t);
    try {
      const receipt = await (await send()).wait();
      return { ok: true, receipt: receipt! };
    } catch (error) {
      const data = revertData(error);
      if (data === undefined) throw error;
      let parsed = null;
      try {
        parsed = data.length >= 10 ? this.f.hub.interface.parseError(data) : null;
      } catch {
        parsed = null;
      }
      if (!parsed || parsed.name === "Error" || parsed.name === "Panic") {
        throw new Error(`reverted without a custom error of the Hub (bare revert, string or panic): data ${data}`);
      }
      return { ok: false, name: parsed.name, args: [...parsed.args] };
    }
  }

  private events(receipt: TransactionReceipt): string[] {
    const hubAddress = lower(this.f.hub.target as string);
    const names: string[] = [];
    for (const log of receipt.logs) {
      if (lower(log.address) !== hubAddress) continue;
      const parsed = this.f.hub.interface.parseLog(log);
      if (!parsed) throw new Error(`unparsable Hub log ${log.topics[0]}`);
      names.push(`${parsed.name}:${lower(String(parsed.args[0]))}`);
      if (parsed.name === "TaskFinalized") this.count(this.finalized, lower(String(parsed.args[0])));
      if (parsed.name === "TaskClaimed") this.count(this.claimed, lower(String(parsed.args[0])));
    }
    return names;
  }

  private count(map: Map<string, number>, key: string) {
    map.set(key, (map.get(key) ?? 0) + 1);
  }

  /** Moves the clock so that the next transaction lands exactly at `at` (if `at` is still ahead). */
  private async waitUntil(at: bigint) {
    if (at - 1n > this.model.clock) {
      await time.increaseTo(at - 1n);
      this.model.clock = at - 1n;
    }
  }

  async step(action: Action, n: number) {
    const m = this.model;
    const t = m.clock + 1n;
    if (action.kind === "wait") {
      this.trace.push(`${n}. wait ${action.seconds} s`);
      await time.increaseTo(m.clock + BigInt(action.seconds));
      m.clock += BigInt(action.seconds);
      return this.check("wait");
    }
    if (action.kind === "waitForDeadline") {
      const target = this.pickTask(action.task, (x) => !isFinal(x.status));
      const task = target.task;
      if (task) {
        const deadline =
          action.deadline === "contribution"
            ? task.deal.contributionDeadline
            : action.deadline === "final"
              ? task.deal.finalDeadline
              : task.revealDeadline;
        if (deadline > 0n) {
          this.trace.push(
            `${n}. wait until ${action.deadline} deadline ${action.offset >= 0 ? "+" : ""}${action.offset} of ${this.describe(target)}`,
          );
          await this.waitUntil(deadline + BigInt(action.offset));
        }
      }
      return this.check("wait");
    }
    if (action.kind === "contributeGroup") {
      const target = this.pickContributionTask(action.task, t);
      for (const [i, digest] of action.digests.entries()) {
        const at = m.clock + 1n;
        await this.execute(
          await this.planContribute(target, this.pickContributor(action.worker + i, target), digest, at),
          at,
          n,
        );
      }
      return;
    }
    if (action.kind === "revealGroup") {
      const target = this.pickRevealTask(action.task, t);
      // Moles whose seal was made for the consensus digest try first, and must be refused.
      for (const worker of this.workers.filter((w) => this.isMoleOnConsensus(target.task, w.address))) {
        const at = m.clock + 1n;
        await this.execute(this.planReveal(target, worker, true, 0, at), at, n);
      }
      const group = this.workers.filter((w) => this.isPendingWinner(target.task, w.address));
      for (const [i, worker] of group.entries()) {
        if ((action.silent >> i) & 1) continue;
        const at = m.clock + 1n;
        await this.execute(this.planReveal(target, worker, true, 0, at), at, n);
      }
      if (action.finalize) {
        const at = m.clock + 1n;
        await this.execute(this.planFinalize(target, this.f.scheduler, at), at, n);
      }
      return;
    }
    if (action.kind === "abandon") {
      const target = this.pickTask(action.task, (x) => x.status === S.REVEALING && x.revealCount === 0n);
      const task = target.task;
      if (task?.status !== S.REVEALING || task.revealCount !== 0n) return; // no silent group: nothing to abandon
      this.trace.push(`${n}. wait until the reveal deadline of ${this.describe(target)}`);
      await this.waitUntil(task.revealDeadline);
      await this.check("wait");
      const at = m.clock + 1n;
      return this.execute(this.planReopen(target, this.f.scheduler, at), at, n);
    }
    const plan = await this.plan(action, t);
    if (plan) await this.execute(plan, t, n);
  }

  /** Sends a planned transaction at time `t` and checks its outcome against the prediction, then every invariant. */
  async execute(plan: Plan, t: bigint, n: number) {
    const m = this.model;
    const expected = plan.expected;
    const predicted = "error" in expected ? fmt(expected.error[0], expected.error.slice(1)) : "success";
    this.trace.push(`${n}. @${t - (m.deals[0]?.start ?? t)}s ${plan.label} -> expect ${predicted}`);
    const before = this.state;
    const result = await this.send(t, plan.send);
    m.clock = t;
    expect(BigInt(await time.latest()), `${plan.label}: mined at the timestamp set for it`).to.equal(t);
    if (!result.ok) this.tally(plan, result.name);
    if ("error" in expected) {
      if (result.ok) expect.fail(`${plan.label}: expected ${predicted}, but it succeeded`);
      expect(
        fmt(result.name, result.args.map(norm)),
        `${plan.label}: reverts with the predicted custom error and arguments`,
      ).to.equal(fmt(expected.error[0], expected.error.slice(1).map(norm)));
      await this.check(plan.kind, before);
      // Tasks first tracked by this step (a stray id) are absent from `before`; the model check saw them UNSET.
      const tasks = Object.fromEntries(Object.keys(before.tasks).map((taskId) => [taskId, this.state.tasks[taskId]]));
      expect({ ...this.state, tasks }, `${plan.label}: a rejected action leaves the state unchanged`).to.deep.equal(
        before,
      );
      return;
    }
    if (!result.ok)
      expect.fail(`${plan.label}: expected success, but it reverted with ${fmt(result.name, result.args)}`);
    const actualEvents = this.events(result.receipt);
    const expectedEvents = expected.apply();
    this.tally(plan, "ok");
    expect(actualEvents, `${plan.label}: emitted events`).to.deep.equal(expectedEvents);
    if (plan.kind === "match") await this.checkDeal(m.deals[m.deals.length - 1]);
    await this.check(plan.kind, before);
  }

  private tally(plan: Plan, outcome: string) {
    const key = `${plan.kind}: ${outcome}${plan.note ? ` (${plan.note})` : ""}`;
    STATS?.set(key, (STATS.get(key) ?? 0) + 1);
  }

  private async checkDeal(deal: MDeal) {
    const { hub } = this.f;
    const d = await hub.viewDeal(deal.id);
    expect(
      {
        requester: lower(d.requester),
        scheduler: lower(d.scheduler),
        appPrice: d.appPrice,
        datasetPrice: d.datasetPrice,
        workerpoolPrice: d.workerpoolPrice,
        startTime: d.startTime,
        timeref: d.timeref,
        volume: d.volume,
        trust: d.trust,
        workerStakeRatio: d.workerStakeRatio,
        schedulerRewardRatio: d.schedulerRewardRatio,
        workerStake: await hub.workerStakeOf(deal.id),
        schedulerStake: await hub.schedulerStakeOf(deal.id),
      },
      `deal ${this.dealName(deal.id)} as matched`,
    ).to.deep.equal({
      requester: lower(deal.requester),
      scheduler: lower(deal.scheduler),
      appPrice: deal.appPrice,
      datasetPrice: deal.datasetPrice,
      workerpoolPrice: deal.poolPrice,
      startTime: deal.start,
      timeref: TIMEREF,
      volume: deal.volume,
      trust: deal.trust,
      workerStakeRatio: deal.workerStakeRatio,
      schedulerRewardRatio: deal.rewardRatio,
      workerStake: deal.workerStake,
      schedulerStake: deal.schedulerStake,
    });
  }

  // ---------------------------------------------------------------- invariants

  /** Reads the chain and checks every invariant; `previous` is the state before the step (for transitions). */
  async check(kind: Action["kind"] | "wait" | "end", previous?: ChainState) {
    const before = previous ?? this.state;
    const now = await this.read();
    this.checkConservation(now);
    this.checkPaidXorRefunded(now);
    this.checkFrozen(now);
    this.checkTransitions(before, now, kind);
    this.checkModel(now);
    this.state = now;
  }

  /** Every account, the kitty, every task and every contribution are exactly what the reference model predicts. */
  private checkModel(now: ChainState) {
    const expected = this.expectedState();
    for (const [address, a] of Object.entries(expected.accounts)) {
      expect(now.accounts[address], `model: escrow account of ${address} (balance, frozen, score)`).to.deep.equal(a);
      expect(now.wallets[address], `model: token wallet of ${address}`).to.equal(expected.wallets[address]);
    }
    expect(now.kitty, "model: kitty").to.equal(expected.kitty);
    expect(now.hubTokens, "model: token.balanceOf(hub)").to.equal(expected.hubTokens);
    expect(now.dealCount, "model: dealCount").to.equal(expected.dealCount);
    expect(Object.keys(now.tasks).sort(), "model: tracked tasks").to.deep.equal(Object.keys(expected.tasks).sort());
    for (const [taskId, task] of Object.entries(expected.tasks)) {
      expect(now.tasks[taskId].view, `model: viewTask(${taskId})`).to.deep.equal(task.view);
      expect(now.tasks[taskId].contributions, `model: contributions to ${taskId}`).to.deep.equal(task.contributions);
    }
  }

  /** Invariant 1: the Hub's token balance is exactly every account's balance + frozen, plus the kitty. */
  private checkConservation(now: ChainState) {
    let sum = now.kitty;
    for (const a of Object.values(now.accounts)) sum += a.balance + a.frozen;
    expect(now.hubTokens, "conservation: token.balanceOf(hub) == Σ(balance + frozen) + kitty").to.equal(sum);
  }

  /** Invariant 2: a final task was paid (TaskFinalized) xor refunded (TaskClaimed), exactly once. */
  private checkPaidXorRefunded(now: ChainState) {
    for (const [taskId, { view }] of Object.entries(now.tasks)) {
      const paid = this.finalized.get(lower(taskId)) ?? 0;
      const refunded = this.claimed.get(lower(taskId)) ?? 0;
      const status = Number(view.status) as S;
      const expected = status === S.COMPLETED ? [1, 0] : status === S.FAILED ? [0, 1] : [0, 0];
      expect([paid, refunded], `task ${taskId} (${STATUS_NAMES[status]}): [finalized, claimed] events`).to.deep.equal(
        expected,
      );
    }
  }

  /**
   * Invariant 3: frozen funds are exactly the live obligations, computed from chain reads: the requester's price
   * and the scheduler's stake for each non-final task, each worker's stake for each contribution to a non-final task.
   */
  private checkFrozen(now: ChainState) {
    const expected = new Map<string, bigint>();
    const add = (address: string, amount: bigint) =>
      expected.set(lower(address), (expected.get(lower(address)) ?? 0n) + amount);
    let allFinal = true;
    for (const deal of this.model.deals) {
      for (const task of deal.tasks) {
        const chainTask = now.tasks[task.id];
        if (isFinal(Number(chainTask.view.status) as S)) continue;
        allFinal = false;
        add(deal.requester, deal.price);
        add(deal.scheduler, deal.schedulerStake);
        for (const c of chainTask.contributions) add(c.worker, deal.workerStake);
      }
    }
    for (const [address, a] of Object.entries(now.accounts)) {
      expect(a.frozen, `frozen funds of ${address} == its live obligations`).to.equal(expected.get(address) ?? 0n);
      if (allFinal) expect(a.frozen, `no stake stays frozen once every task is final (${address})`).to.equal(0n);
    }
  }

  /** Invariant 4: statuses move only along the lifecycle graph, and only through the action that owns the edge. */
  private checkTransitions(before: ChainState, now: ChainState, kind: Action["kind"] | "wait" | "end") {
    const edges: Record<string, string[]> = {
      initialize: ["0>1"],
      contribute: ["0>1", "0>2", "1>2"],
      contributeAndFinalize: ["0>3", "1>3"],
      finalize: ["2>3"],
      reopen: ["2>1"],
      claim: ["0>4", "1>4", "2>4"],
      claimDeal: ["0>4", "1>4", "2>4"],
    };
    let changed = 0;
    for (const [taskId, { view }] of Object.entries(now.tasks)) {
      const from = before.tasks[taskId]?.view.status ?? 0n;
      const to = view.status;
      if (from === to) continue;
      changed++;
      const edge = `${from}>${to}`;
      expect(
        edges[kind] ?? [],
        `task ${taskId}: ${STATUS_NAMES[Number(from)]} -> ${STATUS_NAMES[Number(to)]} is not allowed for ${kind}`,
      ).to.include(edge);
    }
    if (kind !== "claimDeal" && kind !== "end") expect(changed, `one ${kind} moves at most one task`).to.be.at.most(1);
  }

  // ---------------------------------------------------------------- end of run

  /** Invariant 5: after every final deadline and a claimDeal of every deal nothing is live and nothing is stuck. */
  async finish() {
    const m = this.model;
    const last = m.deals.reduce((at, d) => max(at, d.finalDeadline), 0n);
    await this.waitUntil(last);
    for (const [i, deal] of m.deals.entries()) {
      const t = m.clock + 1n;
      await this.execute(this.planClaimDeal(deal, this.everyone[i % this.everyone.length], t), t, -1);
    }
    for (const task of m.tasks()) {
      expect(isFinal(Number(this.state.tasks[task.id].view.status) as S), `task ${task.id} is final at the end`).to.be
        .true;
    }
    let balances = this.state.kitty;
    for (const [address, a] of Object.entries(this.state.accounts)) {
      expect(a.frozen, `nothing frozen at the end (${address})`).to.equal(0n);
      balances += a.balance;
    }
    expect(this.state.hubTokens, "at the end the Hub holds exactly the balances and the kitty").to.equal(balances);
    // Everyone withdraws everything: only the kitty stays in the Hub, and no token was created or lost.
    for (const s of this.everyone) {
      const balance = m.account(s.address).balance;
      if (balance === 0n) continue;
      const t = m.clock + 1n;
      const result = await this.send(t, () => this.f.hub.connect(s).withdraw(balance, GAS));
      m.clock = t;
      expect(result.ok, `${s.address} withdraws its whole balance at the end`).to.be.true;
      m.account(s.address).balance = 0n;
      m.wallets.set(lower(s.address), (m.wallets.get(lower(s.address)) ?? 0n) + balance);
      m.hubTokens -= balance;
    }
    await this.check("end");
    expect(this.state.hubTokens, "after every withdrawal the Hub holds only the kitty").to.equal(this.state.kitty);
    let supply = this.state.hubTokens;
    for (const w of Object.values(this.state.wallets)) supply += w;
    expect(supply, "token supply == wallets + Hub").to.equal(await this.f.token.totalSupply());
  }
}

// ------------------------------------------------------------------------------------------------ the tests

describe("Hub invariants (seeded random scenarios)", function () {
  this.timeout(900_000);

  it("keeps conservation, single settlement, exact frozen funds and the status graph over random scenarios", async function () {
    const property = fc.asyncProperty(scenarioArb, async (scenario: Scenario) => {
      const f = await loadFixture(deployFixture);
      const run = new Run(f, scenario.workers, {
        workerStakeRatio: BigInt(scenario.workerStakeRatio),
        rewardRatio: BigInt(scenario.schedulerRewardRatio),
      });
      try {
        await run.start();
        if (scenario.kittyPrelude > 0n) await run.fillKitty(scenario.kittyPrelude);
        const actions: Action[] = [scenario.first, scenario.second, ...scenario.actions];
        for (const [n, action] of actions.entries()) await run.step(action, n);
        await run.finish();
      } catch (error) {
        if (error instanceof Error) error.message += `\n  trace:\n    ${run.trace.join("\n    ")}`;
        throw error;
      }
    });
    await fc.assert(property, { numRuns: RUNS, seed: SEED, endOnFailure: !SHRINK });
    if (STATS) console.table(Object.fromEntries([...STATS.entries()].sort(([a], [b]) => a.localeCompare(b))));
  });

  it("splits the pool price exactly between the revealed winners and the scheduler", async function () {
    const property = fc.asyncProperty(
      fc.record({
        poolPrice: fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: parseEther("50") })),
        rewardRatio: fc.integer({ min: 0, max: 100 }),
        stakeRatio: fc.integer({ min: 0, max: 100 }),
        trust: fc.integer({ min: 1, max: 3 }),
        revealers: fc.integer({ min: 1, max: 3 }),
        dissenter: fc.boolean(),
      }),
      async (p) => {
        const f = await loadFixture(deployFixture);
        const { hub } = f;
        await f.workerpools.register(
          f.poolOwner.address,
          "split pool",
          f.scheduler.address,
          p.stakeRatio,
          p.rewardRatio,
        );
        await f.workerpools.connect(f.scheduler).setSchedulerConsent(2n, true);
        const orders = await signedOrders(f, {
          workerpool: { workerpool: 2n, workerpoolprice: p.poolPrice },
          request: { workerpoolmaxprice: p.poolPrice, trust: BigInt(p.trust) },
        });
        await hub.connect(f.requester).matchOrders(orders.app, orders.dataset, orders.workerpool, orders.request);
        const deal = dealIdOf(hashOrder(f.domain, "RequestOrder", orders.request));
        const task = taskIdOf(deal, 0);
        const [winning, losing] = DIGESTS;
        const contribute = async (w: HardhatEthersSigner, digest: string) => {
          const authorization = await signMessage(f.scheduler, f.domain, "Authorization", {
            worker: w.address,
            taskId: task,
          });
          await hub
            .connect(w)
            .contribute(deal, 0, resultHash(task, digest), resultSeal(w.address, task, digest), authorization);
        };
        const dissenter = f.workers[5];
        // A dissent needs a quorum above one (at trust 1 the first contribution is the consensus).
        const withDissent = p.dissenter && p.trust >= 2;
        if (withDissent) await contribute(dissenter, losing);
        const winners = f.workers.slice(0, p.trust);
        for (const w of winners) await contribute(w, winning);
        const revealers = winners.slice(0, Math.min(p.revealers, p.trust));
        for (const w of revealers) await hub.connect(w).reveal(task, winning);
        if (revealers.length < winners.length)
          await time.setNextBlockTimestamp((await hub.viewTask(task)).revealDeadline);

        const parties = [f.scheduler, f.requester, f.appOwner, f.datasetOwner, dissenter, ...winners];
        const snapshot = async () => ({
          kitty: await hub.kitty(),
          accounts: await Promise.all(parties.map((s) => hub.accountOf(s.address))),
        });
        const before = await snapshot();
        await hub.connect(f.scheduler).finalize(task, "0x", "0x");
        const after = await snapshot();
        const delta = (i: number) => ({
          balance: after.accounts[i][0] - before.accounts[i][0],
          frozen: after.accounts[i][1] - before.accounts[i][1],
        });

        const price = p.poolPrice;
        const stake = await hub.workerStakeOf(deal);
        const schedulerStake = await hub.schedulerStakeOf(deal);
        const silent = winners.length - revealers.length + (withDissent ? 1 : 0);
        const seized = stake * BigInt(silent);
        const kittyBeforeReward = before.kitty + seized;
        const reward = kittyBeforeReward - after.kitty;
        expect(reward, "kitty reward = min(kitty, max(kittyMin, kitty/10), stakes seized by this finalization)").to.equal(
          kittyReward(kittyBeforeReward, seized),
        );
        if (silent === 0) expect(reward, "no loser: no kitty reward").to.equal(0n);

        const gains = revealers.map((_, i) => {
          const d = delta(5 + i);
          expect(d.frozen, "a revealed winner's stake is unlocked").to.equal(-stake);
          return d.balance - stake;
        });
        for (const [i] of winners.slice(revealers.length).entries()) {
          const d = delta(5 + revealers.length + i);
          expect([d.balance, d.frozen], "a silent winner loses its stake").to.deep.equal([0n, -stake]);
        }
        if (withDissent)
          expect([delta(4).balance, delta(4).frozen], "the dissenter loses its stake").to.deep.equal([0n, -stake]);
        const scheduler = delta(0);
        expect(scheduler.frozen, "the scheduler's stake is unlocked").to.equal(-schedulerStake);
        const schedulerShare = scheduler.balance - schedulerStake - reward;

        expect(new Set(gains).size, "every revealed winner gets the same share").to.equal(1);
        expect(
          gains.reduce((a, b) => a + b, 0n) + schedulerShare,
          "winners' shares + scheduler's share == pool price",
        ).to.equal(price);
        const floor = (price * BigInt(p.rewardRatio)) / 100n;
        expect(schedulerShare >= floor, "the scheduler gets at least its ratio").to.be.true;
        expect(
          schedulerShare - floor < BigInt(revealers.length),
          "the scheduler's dust is less than one wei per winner",
        ).to.be.true;
        const app = orders.app.appprice;
        const dataset = orders.dataset.datasetprice;
        expect(delta(1).frozen, "the requester's frozen payment is spent").to.equal(-(app + dataset + price));
        expect(delta(2).balance, "the app owner is paid its price").to.equal(app);
        expect(delta(3).balance, "the dataset owner is paid its price").to.equal(dataset);
      },
    );
    await fc.assert(property, { numRuns: Math.max(10, Math.round(RUNS * 0.8)), seed: SEED, endOnFailure: !SHRINK });
  });
});
