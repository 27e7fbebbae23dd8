/**
 * The client side of a scheduler's HTTP API, as `request run`, `task show` and `result get` use it: post a signed
 * request to `/orders`, follow `/orders/<hash>` and `/tasks/<taskId>`, fetch `/results/<digest>` and its files. The
 * answers are checked with zod (a scheduler of another version gives one clear line, not a crash), and every failure
 * is a `CliError` with code BOOK naming the URL.
 *
 * Plain node http through ethers' FetchRequest, as in http.ts: the global `fetch` refuses some ports a local
 * scheduler may use.
 */
import { FetchRequest } from "ethers";
import { z } from "zod";
import { parseJsonExact, type JsonValue } from "../encoding";
import { CliError, networkProblem } from "./errors";
import { postJson, serverMessage } from "./http";
import { ordersUrl } from "./order";
import type { CliIo } from "./context";

const BOOK_TIMEOUT_MS = 30_000;

/** `--book`, else CONCORD_BOOK_URL, else undefined. */
export function bookOption(flag: string | undefined, io: CliIo): string | undefined {
  return flag ?? io.env.CONCORD_BOOK_URL;
}

/** Like `bookOption`, for commands that cannot work without one. */
export function requireBook(flag: string | undefined, io: CliIo): string {
  const book = bookOption(flag, io);
  if (!book) throw new CliError("USAGE", "give --book <url> (the scheduler's URL) or set CONCORD_BOOK_URL");
  return book;
}

// ------------------------------------------------------------------ answers

const TaskViewSchema = z.object({
  task: z
    .object({
      taskId: z.string(),
      dealId: z.string(),
      index: z.number(),
      status: z.string(),
      quorum: z.number(),
      commits: z.number(),
      consensusHash: z.string().nullable().optional(),
      resultDigest: z.string().nullable().optional(),
      /** why the scheduler gave the task up */
      failureReason: z.string().nullable().optional(),
    })
    .passthrough(),
  replicas: z.array(z.object({ replicaId: z.string(), worker: z.string(), status: z.string(), revealed: z.boolean().optional() }).passthrough()),
  /** `{ms, event, …details}`; the `finalized` entry carries the finalize `tx` */
  timeline: z.array(z.object({ ms: z.number(), event: z.string() }).passthrough()),
});
/** `GET /tasks/<taskId>`: the scheduler's view of one task. */
export type SchedulerTaskView = z.infer<typeof TaskViewSchema>;

/** The finalize transaction, from the scheduler's timeline. */
export function finalizeTxOf(view: SchedulerTaskView | null): string | null {
  const tx = view?.timeline.find((e) => e.event === "finalized")?.tx;
  return typeof tx === "string" ? tx : null;
}

const OrderViewSchema = z.object({ hash: z.string(), status: z.string(), reason: z.string().nullable().optional() }).passthrough();
export type BookOrderView = z.infer<typeof OrderViewSchema>;

const ResultManifestSchema = z.object({
  digest: z.string(),
  kind: z.enum(["directory", "callback"]),
  files: z.array(z.object({ path: z.string(), size: z.number() })),
  storedAt: z.string().optional(),
});

/** `GET /results/<digest>`: the manifest, and `result.json` parsed exactly (integers beyond 2^53 as bigints). */
export interface BookResult extends z.infer<typeof ResultManifestSchema> {
  result: JsonValue | null;
}

const PostReplySchema = z.object({ hash: z.string(), status: z.string() }).passthrough();

// ------------------------------------------------------------------ client


interface Reply {
  status: number;
  bytes: Uint8Array;
  text: string;
}

export class BookClient {
  /** The scheduler's base URL, with a trailing slash (a path prefix is kept). */
  readonly base: URL;

  constructor(book: string) {
    this.base = new URL(".", ordersUrl(book)); // ordersUrl validates the URL and its scheme
  }

  url(path: string): string {
    return new URL(path, this.base).href;
  }

  private async get(path: string): Promise<Reply> {
    const url = this.url(path);
    const request = new FetchRequest(url);
    request.setHeader("accept", "application/json");
    request.timeout = BOOK_TIMEOUT_MS;
    request.setThrottleParams({ maxAttempts: 1 });
    try {
      const response = await request.send();
      const bytes = response.body ?? new Uint8Array();
      return { status: response.statusCode, bytes, text: Buffer.from(bytes).toString("utf8") };
    } catch (error) {
      throw new CliError("BOOK", `cannot reach the scheduler at ${url}: ${networkProblem(error)}`);
    }
  }

  private refused(path: string, reply: Reply): CliError {
    return new CliError("BOOK", `the scheduler answered HTTP ${reply.status} for ${this.url(path)}: ${serverMessage(reply.text) || "no message"}`);
  }

  private parse<T>(path: string, text: string, schema: z.ZodType<T>): T {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new CliError("BOOK", `the scheduler's answer for ${this.url(path)} is not JSON`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new CliError("BOOK", `unexpected answer from ${this.url(path)}: ${issue.path.join(".") || "body"}: ${issue.message}`);
    }
    return parsed.data;
  }

  /** Posts a signed order; resolves with the book's hash and status. */
  async postOrder(body: { kind: string; order: unknown }): Promise<{ hash: string; status: string; httpStatus: number }> {
    const url = this.url("orders");
    let reply;
    try {
      reply = await postJson(url, body, BOOK_TIMEOUT_MS);
    } catch (error) {
      throw new CliError("BOOK", `cannot reach the order book at ${url}: ${networkProblem(error)}`);
    }
    if (reply.status < 200 || reply.status > 299) {
      throw new CliError("BOOK", `the order book refused the request (HTTP ${reply.status}): ${serverMessage(reply.text) || reply.statusMessage || "no message"}`);
    }
    const answer = this.parse("orders", reply.text, PostReplySchema);
    return { hash: answer.hash, status: answer.status, httpStatus: reply.status };
  }

  /** An order as the book sees it, or null when the book does not hold it. */
  async order(hash: string): Promise<BookOrderView | null> {
    const path = `orders/${hash}`;
    const reply = await this.get(path);
    if (reply.status === 404) return null;
    if (reply.status !== 200) throw this.refused(path, reply);
    return this.parse(path, reply.text, OrderViewSchema);
  }

  /** The scheduler's view of a task, or null when it does not know the task (yet). */
  /**
   * The scheduler's view of a task. `wait`: long poll, answered once the timeline has more than `wait.after` entries
   * or the task ended, or after `wait.ms` (see scheduler/api/tasks.ts).
   */
  async task(taskId: string, wait?: { after: number; ms: number }): Promise<SchedulerTaskView | null> {
    const path = wait ? `tasks/${taskId}?after=${wait.after}&waitMs=${Math.min(wait.ms, BOOK_TIMEOUT_MS - 5_000)}` : `tasks/${taskId}`;
    const reply = await this.get(path);
    if (reply.status === 404) return null;
    if (reply.status !== 200) throw this.refused(path, reply);
    return this.parse(path, reply.text, TaskViewSchema);
  }

  /** A stored result, or null when the scheduler does not hold it. */
  async result(digest: string): Promise<BookResult | null> {
    const path = `results/${digest}`;
    const reply = await this.get(path);
    if (reply.status === 404) return null;
    if (reply.status !== 200) throw this.refused(path, reply);
    let json: JsonValue;
    try {
      json = parseJsonExact(reply.text); // exact: the rows of a SQL result may hold integers beyond 2^53
    } catch {
      throw new CliError("BOOK", `the scheduler's answer for ${this.url(path)} is not JSON`);
    }
    const manifest = ResultManifestSchema.safeParse(JSON.parse(reply.text));
    if (!manifest.success) throw new CliError("BOOK", `unexpected answer from ${this.url(path)}: ${manifest.error.issues[0].message}`);
    const result = (json as { result?: JsonValue }).result ?? null;
    return { ...manifest.data, result };
  }

  /** The bytes of one file of a stored result. */
  async resultFile(digest: string, file: string): Promise<Uint8Array> {
    const path = `results/${digest}/files/${file.split("/").map(encodeURIComponent).join("/")}`;
    const reply = await this.get(path);
    if (reply.status !== 200) throw this.refused(path, reply);
    return reply.bytes;
  }
}
