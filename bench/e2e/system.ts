/**
 * A request through the real system, timed from the requester's side: the same steps as deploy/cluster.ts
 * `runRequest` (sign the request order, POST it to the scheduler's book, wait for its deal, then for
 * the scheduler's `GET /tasks/:id` to say `completed`, fetch the result), with two differences that matter for a
 * benchmark:
 * - a single task is followed with the scheduler's long poll (`GET /tasks/:id?after=N`, answered at the task's next
 *   step), or polled every `taskPollMs` when that is set, so the figure is the system's latency and not a polling
 *   period;
 * - it names its deal itself (sdk `dealId`: the request's hash and the volume it had consumed, 0 here) instead of
 *   waiting for the DealMatched, and follows its task at once (the scheduler starts it while the match is mined); the
 *   book (`GET /orders/:hash`) is only asked while the task is unknown, to stop on a refused request;
 * - a request may have a volume (the throughput run), each task's completion being timed.
 * The requester's order nonce is read once, outside the timing (it never changes here).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Wallet } from "ethers";
import type { Cluster } from "../../deploy/cluster";
import type { LocalNetwork } from "../../deploy/network";
import { dealId as dealIdOf, domain, hashOrder, signOrder, taskId as taskIdOf } from "../../sdk/eip712";
import { buildRequestOrder, orderToJson } from "../../sdk/orders";
import { formatParams } from "../../sdk/params";
import { Hub__factory } from "../../typechain-types";
import { E2eBenchError } from "./errors";
import type { Variant } from "./workloads";

export interface SystemOptions {
  /** how often the requester asks the scheduler whether its task is done; null: long poll (the default) */
  taskPollMs: number | null;
  /**
   * the same for a request of several tasks (one GET per pending task per round: every few ms, that would load the
   * scheduler the benchmark measures)
   */
  volumePollMs: number;
  timeoutMs: number;
}

export const defaultSystemOptions: SystemOptions = { taskPollMs: null, volumePollMs: 200, timeoutMs: 300_000 };

/** One timeline entry of `GET /tasks/:id` (ms since the task's first event). */
export interface TimelineEntry {
  ms: number;
  event: string;
  tx?: string;
  to?: string;
  [more: string]: unknown;
}

export interface TaskOutcome {
  taskId: string;
  /** Date.now() when the requester saw the task completed */
  doneAt: number;
  digest: string;
  timeline: TimelineEntry[];
  quorum: number;
}

export interface SystemRun {
  requestHash: string;
  dealId: string;
  /** Date.now() before the request order was built and signed: the start of the clock */
  startedAt: number;
  /** Date.now() once signed, as the POST leaves */
  postedAt: number;
  tasks: TaskOutcome[];
  /** request → last task seen completed */
  ms: number;
  /** the first task's result (result.json as the scheduler serves it) */
  result: unknown;
}

interface TaskView {
  task: { status: string; resultDigest: string | null; quorum: number; error?: string | null };
  timeline: TimelineEntry[];
}

export class SystemDriver {
  private readonly nonces = new Map<string, bigint>();

  constructor(
    private readonly net: LocalNetwork,
    private readonly cluster: Cluster,
    private readonly opts: SystemOptions = defaultSystemOptions,
  ) {}

  /** Runs one request of `volume` tasks to all of them finalized. */
  async run(v: Variant, requester: Wallet, volume = 1): Promise<SystemRun> {
    const d = this.net.deployment;
    const dom = domain(d.chainId, d.hub);
    const nonce = this.nonces.get(requester.address) ?? (await Hub__factory.connect(d.hub, this.net.provider).orderNonce(requester.address));
    this.nonces.set(requester.address, nonce);

    const startedAt = Date.now();
    const deadline = startedAt + this.opts.timeoutMs;
    const order = buildRequestOrder({
      app: this.cluster.examples.apps[v.workload.app],
      appmaxprice: 0n,
      dataset: v.workload.usesDataset ? this.cluster.examples.customers : 0n,
      workerpoolmaxprice: 0n,
      workerpool: this.cluster.examples.workerpool,
      category: 0n,
      trust: BigInt(v.trust),
      volume: BigInt(volume),
      requester: requester.address,
      params: formatParams(v.workload.params),
      nonce,
    });
    const signed = await signOrder(requester, dom, "RequestOrder", order);
    const requestHash = hashOrder(dom, "RequestOrder", order);
    const postedAt = Date.now();
    const posted = await fetch(`${this.cluster.schedulerUrl}/orders`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ kind: "RequestOrder", order: orderToJson(signed) }),
    });
    if (!posted.ok) throw new E2eBenchError("TASK_FAILED", `${v.name}: the scheduler refused the request: ${posted.status} ${(await posted.text()).slice(0, 300)}`);

    // The deal id is the request's hash and the volume it had consumed (0: a fresh order), so the requester follows
    // its task at once; while the scheduler does not know the task yet (404), the book tells whether it was refused.
    const dealId = dealIdOf(requestHash, 0);
    const checkBook = async () => {
      const book = await fetch(`${this.cluster.schedulerUrl}/orders/${requestHash}`);
      const entry = book.ok ? ((await book.json()) as { status: string; reason: string | null }) : null;
      if (!book.ok) await book.body?.cancel();
      if (entry && entry.status !== "open" && entry.status !== "consumed") {
        throw new E2eBenchError("TASK_FAILED", `${v.name}: the request became ${entry.status} in the book: ${entry.reason}`);
      }
    };

    const pending = new Set(Array.from({ length: volume }, (_, i) => taskIdOf(dealId!, i).toLowerCase()));
    const done = new Map<string, TaskOutcome>();
    const longPoll = volume === 1 && this.opts.taskPollMs === null;
    let seen = 0; // timeline entries of the single task already seen (long poll)
    while (pending.size > 0) {
      const before = seen;
      if (Date.now() > deadline) {
        throw new E2eBenchError("TASK_FAILED", `${v.name}: ${pending.size} of ${volume} tasks not finalized within ${this.opts.timeoutMs} ms`);
      }
      for (const taskId of [...pending]) {
        const wait = longPoll ? `?after=${seen}&until=ended&waitMs=${Math.max(0, Math.min(10_000, deadline - Date.now()))}` : "";
        const res = await fetch(`${this.cluster.schedulerUrl}/tasks/${taskId}${wait}`);
        if (res.status === 404) {
          await res.body?.cancel();
          await checkBook(); // the scheduler has not started the deal yet
          continue;
        }
        if (!res.ok) throw new E2eBenchError("TASK_FAILED", `${v.name}: GET /tasks/${taskId}: ${res.status}`);
        const view = (await res.json()) as TaskView;
        seen = view.timeline.length;
        if (view.task.status === "failed") throw new E2eBenchError("TASK_FAILED", `${v.name}: task ${taskId} failed: ${String(view.task.error)}`);
        if (view.task.status !== "completed") continue;
        const doneAt = Date.now();
        pending.delete(taskId);
        done.set(taskId, { taskId, doneAt, digest: String(view.task.resultDigest), timeline: view.timeline, quorum: Number(view.task.quorum) });
      }
      // a long poll that brought nothing new (its wait ran out, or the task is not known yet) does not loop hot
      const idle = !longPoll || seen === before;
      if (pending.size > 0 && idle) await sleep(volume > 1 ? this.opts.volumePollMs : (this.opts.taskPollMs ?? 10));
    }
    const tasks = [...done.values()].sort((a, b) => a.doneAt - b.doneAt);
    const ms = tasks[tasks.length - 1].doneAt - startedAt;

    const first = done.get(taskIdOf(dealId, 0).toLowerCase())!;
    const res = await fetch(`${this.cluster.schedulerUrl}/results/${first.digest}`);
    if (!res.ok) throw new E2eBenchError("TASK_FAILED", `${v.name}: GET /results/${first.digest}: ${res.status}`);
    const body = (await res.json()) as { result?: unknown };
    return { requestHash, dealId, startedAt, postedAt, tasks, ms, result: body.result ?? body };
  }
}
