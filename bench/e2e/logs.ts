/**
 * The daemons' pino lines (stderr of the scheduler and worker processes) as timestamps: the only place that tells, on
 * the same clock as the benchmark (same host, `Date.now()`), when the scheduler accepted a request, when its
 * `matchOrders` was mined, when its chain watcher delivered the deal, and what each worker did with its replica and
 * when. The task timeline (`GET /tasks/:id`) only has offsets from the task's creation, so these anchor it.
 *
 * Best effort by design: a message renamed in a daemon only empties a row of the breakdown (shown as "-"); the
 * latency figures never depend on the logs. Only the handful of messages used here are kept (the chain watcher's
 * lines are many).
 */

interface LogLine {
  time?: number;
  msg?: string;
  module?: string;
  hash?: string;
  dealId?: string;
  taskId?: string;
  replicaId?: string;
  durationMs?: number;
}

/** A replica's progress in its worker, from the worker's log lines (Date.now() ms, and the run's own duration). */
export interface ReplicaTimes {
  assigned?: number;
  runStarted?: number;
  runFinished?: number;
  /** the runtime's own measure of the run */
  durationMs?: number;
  committed?: number;
}

const WANTED = /"msg":"(order accepted|deal started while its match is mined|deal matched|deal received|replica assigned|run started|run finished|committed|task finalized)"/;

export class DaemonLogs {
  /** request order hash → when the scheduler's book accepted it */
  private readonly accepted = new Map<string, number>();
  /** dealId → when the scheduler's matchOrders was confirmed */
  private readonly matched = new Map<string, number>();
  /** dealId → when the router received the deal from the chain watcher (its tasks are created then) */
  private readonly received = new Map<string, number>();
  private readonly started = new Map<string, number>();
  /** replicaId → its progress in the worker */
  private readonly replicas = new Map<string, ReplicaTimes>();
  /** taskId → when the router logged the task finalized (its receipt seen) */
  private readonly finalized = new Map<string, number>();
  private dropped = 0;

  /** Feeds a chunk of some daemon's stderr. Chunks of different processes are never mixed within one call. */
  feed(chunk: string): void {
    for (const text of chunk.split("\n")) {
      if (!text.startsWith("{") || !WANTED.test(text)) continue;
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        this.dropped++; // a line split across two chunks: that sample is missing from the breakdown
        continue;
      }
      if (typeof line.time === "number") this.record(line, line.time);
    }
  }

  private record(line: LogLine, at: number): void {
    const key = (s: string) => s.toLowerCase();
    if (line.replicaId !== undefined) {
      const times = this.replicas.get(line.replicaId) ?? {};
      this.replicas.set(line.replicaId, times);
      if (line.msg === "replica assigned") times.assigned = at;
      else if (line.msg === "run started") times.runStarted = at;
      else if (line.msg === "run finished") {
        times.runFinished = at;
        if (typeof line.durationMs === "number") times.durationMs = line.durationMs;
      } else if (line.msg === "committed") times.committed = at;
      return;
    }
    if (line.msg === "order accepted" && line.hash) this.accepted.set(key(line.hash), at);
    // both the chain client and the matcher log "deal matched" once the receipt is in; keep the first
    if (line.msg === "deal matched" && line.dealId && !this.matched.has(key(line.dealId))) this.matched.set(key(line.dealId), at);
    if (line.msg === "deal received" && line.dealId) this.received.set(key(line.dealId), at);
    if (line.msg === "deal started while its match is mined" && line.dealId) this.started.set(key(line.dealId), at);
    // the router's line (the chain client's, with `module`, comes just before, at the receipt)
    if (line.msg === "task finalized" && line.taskId && line.module === undefined) this.finalized.set(key(line.taskId), at);
  }

  acceptedAt(requestHash: string): number | undefined {
    return this.accepted.get(requestHash.toLowerCase());
  }

  matchedAt(dealId: string): number | undefined {
    return this.matched.get(dealId.toLowerCase());
  }

  receivedAt(dealId: string): number | undefined {
    return this.received.get(dealId.toLowerCase());
  }

  /** When the router recorded the deal from its own matchOrders, before it was mined (speculative start). */
  startedAt(dealId: string): number | undefined {
    return this.started.get(dealId.toLowerCase());
  }

  replica(replicaId: string): ReplicaTimes {
    return this.replicas.get(replicaId) ?? {};
  }

  finalizedAt(taskId: string): number | undefined {
    return this.finalized.get(taskId.toLowerCase());
  }

  /** Lines that could not be parsed (split across chunks). */
  get droppedLines(): number {
    return this.dropped;
  }
}
