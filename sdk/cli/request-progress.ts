/**
 * The live progress line of `concord request run --wait`: which stage a request has reached, from the scheduler's
 * task view (pure), and how the line is shown. On a terminal one line is rewritten in place (`\r`, then erase to the
 * end of the line); otherwise (a pipe, a log file, a test) each change is printed once on its own line, so the
 * output stays readable as plain text.
 *
 * Stages, in order: matched (the deal exists) → initialized (replicas dispatched) → commits n/q → consensus (q equal
 * commits relayed on chain) → revealed (the digests revealed on chain) → finalized.
 */
import type { SchedulerTaskView } from "./request-book";

export type Stage = "waiting" | "matched" | "initialized" | "commits" | "consensus" | "revealed" | "finalized" | "failed";

export interface Progress {
  stage: Stage;
  /** what the line shows, e.g. `commits 2/3` */
  text: string;
}

/** The stage a task has reached, from the scheduler's view of it (null: the scheduler does not know it yet). */
export function progressOf(view: SchedulerTaskView | null): Progress {
  if (!view) return { stage: "matched", text: "matched: waiting for the scheduler to pick the deal up" };
  const { task, replicas, timeline } = view;
  const events = new Set(timeline.map((e) => e.event));
  if (task.status === "completed") return { stage: "finalized", text: "finalized" };
  if (task.status === "failed" || task.status === "claimed") return { stage: "failed", text: `${task.status}: ${task.failureReason ?? "no reason given"}` };
  if (task.status === "finalizing" || events.has("revealed")) return { stage: "revealed", text: "revealed" };
  if (task.consensusHash || events.has("consensus")) return { stage: "consensus", text: `consensus: quorum ${task.quorum} reached` };
  if (task.commits > 0) return { stage: "commits", text: `commits ${task.commits}/${task.quorum}` };
  if (replicas.length > 0) {
    const running = replicas.filter((r) => r.status === "running" || r.status === "assigned").length;
    return { stage: "initialized", text: `initialized: ${running} replica${running === 1 ? "" : "s"} running, quorum ${task.quorum}` };
  }
  return { stage: "matched", text: "matched: waiting for workers" };
}

/** Shows progress texts: only changes, prefixed with the elapsed time. */
export class ProgressLine {
  private last = "";
  private open = false;
  readonly history: { ms: number; stage: Stage; text: string }[] = [];

  constructor(
    private readonly write: ((text: string) => void) | null,
    private readonly tty: boolean,
    private readonly started: number,
  ) {}

  update(progress: Progress, now = Date.now()): void {
    if (progress.text === this.last) return;
    this.last = progress.text;
    const ms = now - this.started;
    this.history.push({ ms, ...progress });
    if (!this.write) return;
    const line = `[${(ms / 1000).toFixed(1).padStart(5)} s] ${progress.text}`;
    if (this.tty) {
      this.write(`\r${line}\x1b[K`);
      this.open = true;
    } else {
      this.write(`${line}\n`);
    }
  }

  /** Ends the line being rewritten, so what follows starts on a fresh line. */
  end(): void {
    if (this.open && this.write) this.write("\n");
    this.open = false;
  }
}
