/**
 * Consensus grouping (DESIGN §4 "Consensus"): commits with equal result hashes form a group; the largest group of size
 * ≥ q wins; ties go to the group that completed first, i.e. whose q-th commit came earliest. Pure: no clock, no I/O.
 *
 * Why the winner is fixed to its first q members: the Hub moves a task to REVEALING the moment one group holds q
 * contributions and refuses every contribution after that (Hub.sol `_contribute`, lines 170–182 and 154). So exactly q
 * members of the winning group can ever be on chain; later agreeing commits (`surplus`) cannot be relayed and are
 * cancelled rather than asked to reveal. `relayPlan` orders a relay batch so that the chain reaches the same winner.
 */
import { CoreError } from "./errors";
import { MAX_CONTRIBUTIONS } from "./types";

/** A worker's commit as the scheduler received it. */
export interface Commit {
  worker: string;
  /** keccak256(taskId, resultDigest), 0x-prefixed bytes32 */
  resultHash: string;
  /** when the scheduler received it (ms); orders commits, ties keep input order */
  at: number;
}

export interface ConsensusGroup {
  /** lower-case result hash */
  resultHash: string;
  /** the group's commits, earliest first */
  commits: Commit[];
  size: number;
  /** time of the q-th commit; null while the group is smaller than the quorum */
  completedAt: number | null;
}

export interface Consensus {
  quorum: number;
  /** every group: largest first, then completed first, then first commit first */
  groups: ConsensusGroup[];
  /** the winning group, null while no group reached the quorum */
  winner: ConsensusGroup | null;
  reached: boolean;
  /** the first q workers of the winning group: the ones relayed on chain and asked to reveal */
  winners: string[];
  /** agreeing workers of the winning group beyond the first q (cannot contribute on chain any more) */
  surplus: string[];
  /** workers whose commit is outside the winning group (empty while no winner) */
  divergent: string[];
  /** size of the largest group (0 without commits) */
  largest: number;
  /** agreeing commits still needed at best: max(0, q − largest) */
  needed: number;
  /** more than one distinct result hash was committed */
  disagreement: boolean;
}

export interface GroupOptions {
  /**
   * A winner chosen earlier (persisted by the caller): once the scheduler acted on a consensus, a late commit must not
   * switch the winner. Used only while that group still holds q commits.
   */
  winner?: string | null;
}

const BYTES32 = /^0x[0-9a-fA-F]{64}$/;

/** Checks a quorum: an integer ≥ 1 (use `quorumOf(trust)` to derive it). */
export function checkQuorum(quorum: number): void {
  if (!Number.isInteger(quorum) || quorum < 1) throw new CoreError("INVALID_QUORUM", `quorum must be an integer >= 1, got ${quorum}`);
}

function checkCommit(c: Commit, i: number): void {
  if (typeof c?.worker !== "string" || c.worker.length === 0) throw new CoreError("INVALID_COMMIT", `commit ${i}: missing worker`);
  if (typeof c.resultHash !== "string" || !BYTES32.test(c.resultHash)) {
    throw new CoreError("INVALID_COMMIT", `commit ${i}: resultHash is not a 0x-prefixed bytes32`);
  }
  if (typeof c.at !== "number" || !Number.isFinite(c.at) || c.at < 0) throw new CoreError("INVALID_COMMIT", `commit ${i}: bad time ${c.at}`);
}

/**
 * Sorts commits by time (stable) and keeps each worker's earliest commit only: on chain a worker contributes once per
 * task (HubAlreadyContributed), so a second commit from the same worker can never count.
 */
export function orderCommits(commits: readonly Commit[]): Commit[] {
  commits.forEach(checkCommit);
  const sorted = commits.map((c, i) => ({ c, i })).sort((a, b) => a.c.at - b.c.at || a.i - b.i);
  const seen = new Set<string>();
  const out: Commit[] = [];
  for (const { c } of sorted) {
    const key = c.worker.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(c);
  }
  return out;
}

/** Groups commits by result hash and picks the winner. Throws CoreError on a bad quorum or a malformed commit. */
export function groupCommits(commits: readonly Commit[], quorum: number, options: GroupOptions = {}): Consensus {
  checkQuorum(quorum);
  const ordered = orderCommits(commits);
  const byHash = new Map<string, { group: ConsensusGroup; firstIndex: number; completedIndex: number }>();
  ordered.forEach((c, index) => {
    const hash = c.resultHash.toLowerCase();
    let entry = byHash.get(hash);
    if (!entry) {
      entry = { group: { resultHash: hash, commits: [], size: 0, completedAt: null }, firstIndex: index, completedIndex: Infinity };
      byHash.set(hash, entry);
    }
    const g = entry.group;
    g.commits.push(c);
    g.size += 1;
    if (g.size === quorum) {
      g.completedAt = c.at;
      entry.completedIndex = index;
    }
  });

  const entries = [...byHash.values()].sort(
    (a, b) => b.group.size - a.group.size || a.completedIndex - b.completedIndex || a.firstIndex - b.firstIndex,
  );
  const groups = entries.map((e) => e.group);
  const complete = entries.filter((e) => e.group.size >= quorum);
  const pinned = options.winner ? complete.find((e) => e.group.resultHash === options.winner!.toLowerCase()) : undefined;
  // Largest first, then earliest completion: the first complete entry in sort order is the winner.
  const winner = pinned?.group ?? complete[0]?.group ?? null;

  const largest = groups[0]?.size ?? 0;
  const members = winner ? winner.commits.map((c) => c.worker) : [];
  return {
    quorum,
    groups,
    winner,
    reached: winner !== null,
    winners: members.slice(0, quorum),
    surplus: members.slice(quorum),
    divergent: winner ? ordered.filter((c) => c.resultHash.toLowerCase() !== winner.resultHash).map((c) => c.worker) : [],
    largest,
    needed: Math.max(0, quorum - largest),
    disagreement: groups.length > 1,
  };
}

/**
 * Can the quorum still be reached, given `live` replicas still computing (not yet committed)? True when reached, or
 * when the live replicas could all join the largest group (or form a new one): largest + live ≥ q. False means: add
 * replicas, or give up.
 */
export function canReachConsensus(consensus: Consensus, live: number): boolean {
  if (!Number.isInteger(live) || live < 0) throw new CoreError("INVALID_TASK", `live replicas must be an integer >= 0, got ${live}`);
  return consensus.reached || live >= consensus.needed;
}

export interface RelayPlanOptions {
  /** workers whose contribution is already on chain for this task (they are skipped, and count toward the cap) */
  onChain?: readonly string[];
  /** the Hub's cap on contributions per task (Clerk.sol MAX_CONTRIBUTIONS) */
  maxContributions?: number;
}

export interface RelayPlan {
  /** commits to relay, in this order, in one `contributeBatch` */
  relay: Commit[];
  /** commits not to relay: the surplus of the winning group, losers that would complete a group, or beyond the cap */
  withheld: Commit[];
}

/**
 * Which commits to relay on chain, and in which order, so that the chain reaches the same winner as `consensus`.
 *
 * The Hub turns a task to REVEALING as soon as any group holds q contributions and then refuses the rest of the batch
 * (the whole `contributeBatch` reverts). So: every losing group is relayed up to q − 1 contributions (its members
 * still lose their stake at finalize, Hub.sol `_settleContributions`), placed before the winner's, and the winning
 * group is relayed up to exactly q. Without a winner yet, every group is relayed up to q − 1 (safe in any outcome).
 * Within the cap, the winners come first, then losers in commit order.
 */
export function relayPlan(consensus: Consensus, options: RelayPlanOptions = {}): RelayPlan {
  const q = consensus.quorum;
  const onChain = new Set((options.onChain ?? []).map((w) => w.toLowerCase()));
  const max = options.maxContributions ?? MAX_CONTRIBUTIONS;
  let room = Math.max(0, max - onChain.size);
  const winnerPicks: Commit[] = [];
  const loserCandidates: Commit[] = [];
  const withheld: Commit[] = [];

  for (const g of consensus.groups) {
    const isWinner = consensus.winner?.resultHash === g.resultHash;
    const limit = isWinner ? q : q - 1;
    let count = g.commits.filter((c) => onChain.has(c.worker.toLowerCase())).length;
    for (const c of g.commits) {
      if (onChain.has(c.worker.toLowerCase())) continue;
      if (count < limit) {
        (isWinner ? winnerPicks : loserCandidates).push(c);
        count += 1;
      } else withheld.push(c);
    }
  }

  const winners = winnerPicks.slice(0, room);
  withheld.push(...winnerPicks.slice(room));
  room -= winners.length;
  // Losers in commit order (the order the consensus saw them), as many as the cap allows.
  loserCandidates.sort((a, b) => a.at - b.at);
  const losers = loserCandidates.slice(0, room);
  withheld.push(...loserCandidates.slice(room));
  return { relay: [...losers, ...winners], withheld };
}
