/**
 * The scheduler ⇄ worker session protocol (WebSocket, one JSON object per text frame), shared by both daemons.
 * Every frame is validated with these zod schemas on receipt; a frame that fails gets an `error` frame back (the
 * session stays open) and is otherwise ignored.
 *
 *  worker                                   scheduler
 *    ── connect ws://…/ws ─────────────────▶
 *    ◀──────────────────────── challenge {nonce, chainId, hub}
 *    ── hello {worker, signature, pending} ▶   signature = EIP-191 personal_sign(loginMessage(challenge))
 *    ◀───────────── welcome {heartbeatMs} | error {code} + close (bad signature, not enough stake deposited)
 *    ── ping ──────────────────────────────▶   every heartbeatMs; no frame for 3 × heartbeatMs = the worker is lost
 *    ◀─────────────────────────────── pong
 *    ◀──────────── assign {replicaId, task…, authorization}      run it in the sandbox
 *    ── commit {replicaId, resultHash, resultSeal, signature} ▶  signature = EIP-712 Contribution (relayable); with
 *                                           commitMode "direct" the worker first sends `contribute` itself
 *    ◀──────────────────── reveal {replicaId} | cancel {replicaId}
 *    ── revealed {replicaId, resultDigest, signature, files, callbackData} ▶   signature = EIP-712 Reveal
 *    ── failed {replicaId, code, message} ─▶   the run failed (no commit)
 *
 * A worker that reconnects lists in `hello.pending` the commits it made and has not revealed; the scheduler answers
 * with `reveal` for those still wanted, so a restart between commit and reveal loses no stake.
 */
import { z } from "zod";

const hex = (bytes?: number) =>
  z
    .string()
    .regex(bytes === undefined ? /^0x([0-9a-fA-F]{2})*$/ : new RegExp(`^0x[0-9a-fA-F]{${bytes * 2}}$`), bytes === undefined ? "0x-hex bytes" : `0x-hex, ${bytes} bytes`);
const bytes32 = hex(32);
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "an address");
const id = z.string().min(1).max(100);

export const PROTOCOL_VERSION = 1;
/** A result file travels base64-encoded inside `revealed`; the whole frame is capped by the scheduler. */
export const MAX_FRAME_BYTES = 24 * 1024 * 1024;

/** Files of one result at most, and characters of one file's path (the `revealed` frame's limits). */
export const MAX_RESULT_FILES = 1000;
export const MAX_RESULT_PATH = 1024;

export const ResultFile = z.object({ path: z.string().min(1).max(MAX_RESULT_PATH), base64: z.string() }).strict();

/** Frames the scheduler sends. */
export const SchedulerFrame = z.discriminatedUnion("type", [
  z.object({ type: z.literal("challenge"), nonce: bytes32, chainId: z.number().int().positive(), hub: address, version: z.number().int() }).strict(),
  z.object({ type: z.literal("welcome"), worker: address, heartbeatMs: z.number().int().positive() }).strict(),
  z.object({ type: z.literal("pong") }).strict(),
  z
    .object({
      type: z.literal("assign"),
      replicaId: id,
      dealId: bytes32,
      index: z.number().int().nonnegative(),
      taskId: bytes32,
      app: z.object({ id: z.string(), runtime: z.enum(["wasi", "sql"]), uri: z.string(), checksum: bytes32 }).strict(),
      dataset: z.object({ id: z.string(), name: z.string(), uri: z.string(), checksum: bytes32 }).strict().nullable(),
      params: z.string(),
      /** the deal has an on-chain callback: the digest is keccak256 of /out/callback-data */
      callback: z.boolean(),
      /** wall-clock budget of the run */
      timeoutMs: z.number().int().positive(),
      /** the scheduler's EIP-712 Authorization(worker, taskId) */
      authorization: hex(),
      /** relay (default): the scheduler relays the signed commit; direct: the worker sends `contribute` itself */
      commitMode: z.enum(["relay", "direct"]).optional(),
    })
    .strict(),
  z.object({ type: z.literal("reveal"), replicaId: id, taskId: bytes32 }).strict(),
  z.object({ type: z.literal("cancel"), replicaId: id, taskId: bytes32, reason: z.string() }).strict(),
  z.object({ type: z.literal("error"), code: z.string(), message: z.string() }).strict(),
]);
export type SchedulerFrame = z.infer<typeof SchedulerFrame>;

/** Frames the worker sends. */
export const WorkerFrame = z.discriminatedUnion("type", [
  z
    .object({
      type: z.literal("hello"),
      worker: address,
      signature: hex(),
      version: z.number().int(),
      /** commits made and not revealed yet (after a restart) */
      pending: z
        .array(
          z
            .object({
              replicaId: id,
              taskId: bytes32,
              resultHash: bytes32,
              /** the commit itself, so a commit recorded while the socket was down can still be relayed */
              resultSeal: bytes32.optional(),
              signature: hex().optional(),
            })
            .strict(),
        )
        .max(1000),
    })
    .strict(),
  z.object({ type: z.literal("ping") }).strict(),
  z
    .object({ type: z.literal("commit"), replicaId: id, taskId: bytes32, resultHash: bytes32, resultSeal: bytes32, signature: hex() })
    .strict(),
  z
    .object({
      type: z.literal("revealed"),
      replicaId: id,
      taskId: bytes32,
      resultDigest: bytes32,
      signature: hex(),
      files: z.array(ResultFile).max(MAX_RESULT_FILES),
      callbackData: hex().nullable(),
    })
    .strict(),
  z.object({ type: z.literal("failed"), replicaId: id, taskId: bytes32, code: z.string(), message: z.string().max(2000) }).strict(),
]);
export type WorkerFrame = z.infer<typeof WorkerFrame>;

/** The text a worker signs (EIP-191) to log in: binds the session to this scheduler's chain, Hub and nonce. */
export function loginMessage(c: { nonce: string; chainId: number; hub: string }): string {
  return `Concord worker login\nchain: ${c.chainId}\nhub: ${c.hub.toLowerCase()}\nnonce: ${c.nonce}`;
}

export class FrameError extends Error {
  override readonly name = "FrameError";
}

/** Parses one frame; throws FrameError with a one-line reason. */
export function parseFrame<T>(schema: z.ZodType<T>, text: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new FrameError("frame is not JSON");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FrameError(`invalid frame: ${issue.path.join(".") || "frame"}: ${issue.message}`);
  }
  return parsed.data;
}
