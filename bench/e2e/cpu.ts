/**
 * Where the CPU goes: the CPU time (user + system, every thread, exited ones included) each process of the system
 * spends while a request runs, read from Linux's /proc/<pid>/stat (and /proc/<pid>/task/<pid>/stat for the main
 * thread) before and after each measured request. On 2 cores the daemons, the sandboxes and the chain compete for the
 * same CPUs, so CPU spent anywhere during a request slows it down.
 *
 * The kernel counts in clock ticks (10 ms on most systems), so a single request's figure is coarse: the report gives
 * the mean over every request, which is exact enough over tens of them. Elsewhere than on Linux nothing is measured.
 */
import { readFileSync } from "node:fs";

const TICK_MS = 10; // USER_HZ is 100 on every Linux ABI Node runs on

/** A process to watch, by role (several processes may share a role: the workers). */
export interface Watched {
  role: string;
  pid: number;
}

/** CPU ms per role: the process's main thread and its other threads (GC, compiler, thread pool, worker threads). */
export interface CpuUse {
  main: number;
  threads: number;
}

type Snapshot = Map<string, CpuUse>;

export class CpuMeter {
  private readonly totals = new Map<string, CpuUse>();
  private windows = 0;
  readonly supported: boolean;

  constructor(private readonly watched: Watched[]) {
    this.supported = watched.length > 0 && readStat(`/proc/${watched[0].pid}/stat`) !== null;
  }

  /** Runs `work`, adding the CPU every watched process spent meanwhile to the totals. */
  async measure<T>(work: () => Promise<T>): Promise<T> {
    if (!this.supported) return work();
    const before = this.snapshot();
    const out = await work();
    const after = this.snapshot();
    for (const [role, a] of after) {
      const b = before.get(role) ?? { main: 0, threads: 0 };
      const t = this.totals.get(role) ?? { main: 0, threads: 0 };
      t.main += a.main - b.main;
      t.threads += a.threads - b.threads;
      this.totals.set(role, t);
    }
    this.windows++;
    return out;
  }

  /** Mean CPU ms per measured window, per role, in the order the roles were first watched. */
  perWindow(): { role: string; main: number; threads: number }[] {
    if (this.windows === 0) return [];
    const roles = [...new Set(this.watched.map((w) => w.role))];
    return roles.map((role) => {
      const t = this.totals.get(role) ?? { main: 0, threads: 0 };
      return { role, main: t.main / this.windows, threads: t.threads / this.windows };
    });
  }

  private snapshot(): Snapshot {
    const out: Snapshot = new Map();
    for (const { role, pid } of this.watched) {
      const use = out.get(role) ?? { main: 0, threads: 0 };
      // the process's own counters keep what its exited threads used (a cancelled replica's sandbox thread is
      // terminated): the other threads are the process minus its main thread
      const total = readStat(`/proc/${pid}/stat`);
      const main = readStat(`/proc/${pid}/task/${pid}/stat`);
      if (total !== null && main !== null) {
        use.main += main;
        use.threads += total - main;
      }
      out.set(role, use);
    }
    return out;
  }
}

/** utime + stime in a stat file, in ms; null when it cannot be read (not Linux, or the process is gone). */
function readStat(path: string): number | null {
  try {
    const text = readFileSync(path, "utf8");
    // the command name (field 2) may hold spaces and parentheses: the fields after it start after the last ')'
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS; // fields 14 and 15 of the whole line
  } catch {
    return null;
  }
}
