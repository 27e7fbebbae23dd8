/**
 * TEST HOOK. How a worker misbehaves on purpose, so that end-to-end tests can run liars, laggards and workers that
 * never reveal as real processes against a real scheduler and chain. A production worker is always `honest`; the
 * other behaviours lose stake by design.
 *
 * - `honest`: commits the digest of its output and reveals it when asked.
 * - `lie`: commits (and, when asked, reveals) a wrong digest: keccak256 of the true one. Its files are the true ones.
 * - `slow`: honest, but waits `slowDelayMs` after the run before committing (a straggler for the hedging policies).
 * - `silent`: commits honestly and never reveals (the scheduler must reopen the task after its reveal deadline).
 */
import { keccak256 } from "ethers";

export type Behaviour = "honest" | "lie" | "slow" | "silent";
export const BEHAVIOURS: readonly Behaviour[] = ["honest", "lie", "slow", "silent"];

export function isBehaviour(text: unknown): text is Behaviour {
  return typeof text === "string" && (BEHAVIOURS as readonly string[]).includes(text);
}

/** The digest a worker of this behaviour commits for a run whose true digest is `digest`. */
export function committedDigest(digest: string, behaviour: Behaviour): string {
  return behaviour === "lie" ? keccak256(digest) : digest;
}

/**
 * Parses `honest`, `lie`, `silent`, `slow` or `slow:<ms>` (the CLI's `--behaviour`); returns undefined when the
 * text is none of those.
 */
export function parseBehaviour(text: string): { behaviour: Behaviour; slowDelayMs?: number } | undefined {
  const match = /^(honest|lie|slow|silent)(?::(\d{1,9}))?$/.exec(text.trim());
  if (!match) return undefined;
  const behaviour = match[1] as Behaviour;
  if (match[2] !== undefined && behaviour !== "slow") return undefined;
  return match[2] === undefined ? { behaviour } : { behaviour, slowDelayMs: Number(match[2]) };
}
