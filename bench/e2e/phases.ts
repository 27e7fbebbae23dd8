/**
 * Where a request's time goes in the system: its path cut into consecutive phases, from the requester's clock, the
 * daemons' log timestamps (logs.ts) and the task timeline of `GET /tasks/:id` (offsets from the task's creation).
 * Consecutive phases add up to the request's latency; whatever no phase explains is reported as `unaccounted`, so a
 * missing or renamed event shows up instead of silently shrinking the total.
 *
 * The timeline's event names changed once already (`matched`/`commit`/`reveal` became `task.created`/
 * `replica.committed`/`replica.revealed`); both spellings are recognised.
 */
import type { DaemonLogs } from "./logs";
import type { SystemRun, TaskOutcome, TimelineEntry } from "./system";

export interface Phase {
  key: string;
  label: string;
  /** the floor has no counterpart for this phase (pure system overhead) */
  overhead: boolean;
}

export const SYSTEM_PHASES: Phase[] = [
  { key: "sign", label: "sign the request order", overhead: false },
  { key: "post", label: "POST /orders: admission checks, book", overhead: true },
  { key: "match", label: "matcher: matchOrders estimate -> task created", overhead: false },
  { key: "dispatch", label: "tick -> first replica dispatched", overhead: true },
  { key: "work", label: "workers: fetch, run, sign, record (q-th commit)", overhead: false },
  { key: "confirm", label: "matchOrders mined + deal read, after the q-th commit", overhead: false },
  { key: "consensus", label: "tick -> consensus", overhead: true },
  { key: "contribute", label: "contributeBatch tx", overhead: false },
  { key: "reveals", label: "q-th reveal stored after the batch's receipt", overhead: true },
  { key: "toFinalize", label: "tick -> finalize step", overhead: true },
  { key: "revealTx", label: "revealBatch tx (finalize right behind)", overhead: false },
  { key: "finalizeTx", label: "finalize tx, after the reveals' receipt", overhead: false },
  { key: "seen", label: "requester sees it (poll + GET)", overhead: true },
  { key: "unaccounted", label: "unaccounted (clock and rounding)", overhead: false },
];

/**
 * The `work` phase of the replica whose commit made the quorum, cut from its worker's log lines (shown under `work`,
 * not part of the sum): what the worker does before the run, the run, what it does after, and the rest (the assign
 * and commit frames on the WebSocket, the scheduler's handling of the commit).
 */
export const WORK_PHASES: Phase[] = [
  { key: "workFetch", label: "  worker: registry check + artifact cache", overhead: false },
  { key: "workRun", label: "  worker: app run (Runtime.run)", overhead: false },
  { key: "workCommit", label: "  worker: sign, record on disk, send commit", overhead: false },
  { key: "workTransit", label: "  assign/commit frames + scheduler handling", overhead: false },
];

const ALIASES = {
  created: ["task.created", "matched"],
  confirmed: ["deal.confirmed"],
  dispatched: ["replica.assigned", "dispatched"],
  committed: ["replica.committed", "commit"],
  consensus: ["consensus"],
  contributed: ["contributed"],
  replicaRevealed: ["replica.revealed", "reveal"],
  revealedTx: ["revealed"],
  finalized: ["finalized"],
};

const firstAt = (t: TimelineEntry[], names: string[], after = -Infinity): number | undefined =>
  t.find((e) => names.includes(e.event) && e.ms >= after)?.ms;

/** The task's key moments, in ms since its creation (the timeline's first event); undefined when missing. */
export interface Milestones {
  created: number;
  /** a deal started while its matchOrders was mined: when the DealMatched confirmed it */
  confirmed?: number;
  dispatched?: number;
  /** the commit that made the quorum (the q-th) */
  quorumCommit?: number;
  quorumReplica?: string;
  consensus?: number;
  contributed?: number;
  /** the q-th reveal received (the router asks for them at consensus, while contributeBatch is mined) */
  lastReveal?: number;
  finalizing?: number;
  revealedTx?: number;
  finalized?: number;
}

export function milestonesOf(task: TaskOutcome): Milestones {
  const t = task.timeline;
  const q = task.quorum;
  const commits = t.filter((e) => ALIASES.committed.includes(e.event));
  const contributed = firstAt(t, ALIASES.contributed);
  const consensus = firstAt(t, ALIASES.consensus);
  const reveals = consensus === undefined ? [] : t.filter((e) => ALIASES.replicaRevealed.includes(e.event) && e.ms >= consensus);
  const replica = commits[q - 1]?.replicaId;
  return {
    created: firstAt(t, ALIASES.created) ?? 0,
    confirmed: firstAt(t, ALIASES.confirmed),
    dispatched: firstAt(t, ALIASES.dispatched),
    quorumCommit: commits[q - 1]?.ms,
    quorumReplica: typeof replica === "string" ? replica : undefined,
    consensus,
    contributed,
    lastReveal: reveals.length >= q ? reveals[q - 1].ms : undefined,
    finalizing: t.find((e) => e.event === "task.status" && e.to === "finalizing")?.ms,
    revealedTx: firstAt(t, ALIASES.revealedTx, contributed),
    finalized: firstAt(t, ALIASES.finalized),
  };
}

/** One line: the milestones' offsets, e.g. `created 0, dispatched 37, q-th commit 89, …`. */
export function milestonesLine(m: Milestones): string {
  const parts: [string, number | undefined][] = [
    ["created", m.created],
    ["dispatched", m.dispatched],
    ["deal confirmed", m.confirmed],
    ["q-th commit", m.quorumCommit],
    ["consensus", m.consensus],
    ["contributed tx", m.contributed],
    ["q-th reveal", m.lastReveal],
    ["finalizing", m.finalizing],
    ["revealed tx", m.revealedTx],
    ["finalized tx", m.finalized],
  ];
  return parts.filter(([, ms]) => ms !== undefined).map(([name, ms]) => `${name} ${ms}`).join(", ");
}

/** The phases of one single-task request (undefined where an event or log line is missing). */
export function phasesOf(run: SystemRun, task: TaskOutcome, logs: DaemonLogs): Record<string, number | undefined> {
  const accepted = logs.acceptedAt(run.requestHash);
  // the task is created when the matcher's estimate passed (speculative start), or else once the deal is read
  const createdAt = logs.startedAt(run.dealId) ?? logs.receivedAt(run.dealId);
  const finalizedLog = logs.finalizedAt(task.taskId);
  const diff = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : b - a);
  const { created, confirmed, dispatched, quorumCommit, quorumReplica, consensus, contributed, lastReveal, finalizing, revealedTx, finalized } = milestonesOf(task);
  const worker = quorumReplica === undefined ? {} : logs.replica(quorumReplica);
  // a speculative deal's relay waits for its confirmation (only what the match takes beyond the q-th commit is on the
  // path), unless it went right behind the match, before the confirmation (the consensus first): then nothing waited
  const waitedFor = confirmed === undefined || (consensus !== undefined && consensus < confirmed) ? undefined : confirmed;
  const waited = waitedFor === undefined || quorumCommit === undefined ? 0 : Math.max(0, waitedFor - quorumCommit);

  const phases: Record<string, number | undefined> = {
    sign: diff(run.startedAt, run.postedAt),
    post: diff(run.postedAt, accepted),
    match: diff(accepted, createdAt),
    dispatch: diff(created, dispatched),
    work: diff(dispatched, quorumCommit),
    confirm: quorumCommit === undefined ? undefined : waited,
    consensus: diff(quorumCommit === undefined ? undefined : quorumCommit + waited, consensus),
    contribute: diff(consensus, contributed),
    // the reveals travel while contributeBatch is mined: only what they take beyond its receipt is on the path
    reveals: diff(contributed, lastReveal) === undefined ? undefined : Math.max(0, lastReveal! - contributed!),
    toFinalize: diff(lastReveal === undefined || contributed === undefined ? undefined : Math.max(lastReveal, contributed), finalizing),
    revealTx: diff(finalizing ?? lastReveal, revealedTx),
    finalizeTx: diff(revealedTx, finalized),
    seen: diff(finalizedLog, task.doneAt),
  };
  const known = SYSTEM_PHASES.filter((p) => p.key !== "unaccounted").reduce((sum, p) => sum + (phases[p.key] ?? 0), 0);
  phases.unaccounted = task.doneAt - run.startedAt - known;
  phases.overhead = SYSTEM_PHASES.filter((p) => p.overhead).reduce((sum, p) => sum + (phases[p.key] ?? 0), 0);
  phases.workFetch = diff(worker.assigned, worker.runStarted);
  phases.workRun = worker.durationMs;
  phases.workCommit = diff(worker.runFinished, worker.committed);
  const inWorker = diff(worker.assigned, worker.committed);
  phases.workTransit = phases.work === undefined || inWorker === undefined ? undefined : phases.work - inWorker;
  return phases;
}
