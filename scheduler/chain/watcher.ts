/**
 * ChainWatcher: follows the Hub's lifecycle events with `eth_getLogs` polling, from a persisted cursor.
 *
 * Delivery contract (what a handler can rely on, and what it must do):
 * - Events reach the handler one at a time, in chain order (block number, then log index), and only once their
 *   block is `confirmations` deep.
 * - The cursor moves past an event only after its handler resolved, and is persisted then. A handler that throws
 *   stops the poll; the same event is delivered again on the next poll (and so on until it succeeds). The watcher
 *   itself never crashes on a handler error or an RPC failure: it logs and retries next poll.
 * - Delivery is therefore AT LEAST ONCE: a crash between a handler's effect and the cursor write, a retry after a
 *   partial failure, or a reorg rewind replays events. Handlers MUST be idempotent (upserts keyed by taskId/dealId,
 *   state transitions that ignore a stale or repeated step), and should reconcile with the chain's views rather
 *   than trust an event blindly.
 * - Reorgs: before each poll that finds new blocks, and at least every `idleReorgCheckMs` while none come, the
 *   watcher checks that the block under the cursor still has the hash it recorded (an idle poll is otherwise one
 *   `eth_blockNumber`). If not, it rewinds `reorgRewind` blocks and re-delivers from there. Events that the reorg
 *   removed are not "un-delivered": the handler sees the new canonical events and must reconcile. On a chain with
 *   finality worth waiting for, set `confirmations` so that reorgs below it are practically impossible.
 */
import { toQuantity, type JsonRpcProvider, type Log } from "ethers";
import type { Logger } from "pino";
import pino from "pino";
import type { Cursor, CursorStore } from "./cursor";
import { HUB_EVENTS, decodeHubLog, eventTopics, type HubEvent, type HubEventName } from "./events";
import { withRetry, sleep, type RetryPolicy } from "./errors";

export interface ChainWatcherOptions {
  /** The Hub's address. */
  hub: string;
  /** First block to scan when there is no cursor yet (the deployment block). */
  fromBlock: number;
  /** Only blocks this deep are read (0: up to the head, fine on a local chain). */
  confirmations: number;
  /** Largest block range per `eth_getLogs` query (providers cap it). */
  maxBlockRange: number;
  /** Pause between polls once caught up. */
  pollIntervalMs: number;
  /** Blocks to rewind when the block under the cursor changed hash. */
  reorgRewind: number;
  /** While no new block comes, the block under the cursor is still checked this often (a reorg at the same height). */
  idleReorgCheckMs: number;
  /** Key of this watcher's cursor in the store. */
  cursorKey: string;
  /** Events delivered to the handler. */
  events: readonly HubEventName[];
  /** RPC retries within one poll (a poll that still fails is retried at the next one). */
  retry: RetryPolicy;
}

export const defaultChainWatcherOptions: Omit<ChainWatcherOptions, "hub"> = {
  fromBlock: 0,
  confirmations: 0,
  maxBlockRange: 2_000,
  pollIntervalMs: 2_000,
  reorgRewind: 12,
  idleReorgCheckMs: 5_000,
  cursorKey: "hub",
  events: HUB_EVENTS,
  retry: { maxAttempts: 3, backoffMs: 200, maxBackoffMs: 2_000 },
};

export type EventHandler = (event: HubEvent) => Promise<void>;

export interface ChainWatcherModules {
  provider: JsonRpcProvider;
  cursors: CursorStore;
  handler: EventHandler;
  /**
   * Whether a log may concern the handler, from its topics alone (asked in chain order, after the handler saw every
   * earlier event): the others are neither decoded nor delivered. A shared Hub carries every pool's tasks.
   */
  relevant?: (log: Log) => boolean;
  logger?: Logger;
}

/** What one poll did. */
export interface PollResult {
  /** Events whose handler succeeded in this poll. */
  handled: number;
  /** The last block read (the safe head), or null when the poll stopped early. */
  head: number | null;
  /** Whether a reorg was detected (and the cursor rewound) at the start of this poll. */
  reorged: boolean;
  /** The error that stopped the poll (handler or RPC), if any. */
  error?: unknown;
}

export class ChainWatcher {
  readonly options: ChainWatcherOptions;
  private readonly logger: Logger;
  private readonly topics: string[];
  private polling: Promise<PollResult> | null = null;
  /** The head the last poll read up to (run: another poll follows at once when it moved). */
  private lastHead: number | null = null;
  /** When the block under the cursor was last checked for a reorg. */
  private reorgCheckedAt = 0;

  constructor(
    options: Partial<ChainWatcherOptions> & { hub: string },
    private readonly modules: ChainWatcherModules,
  ) {
    this.options = { ...defaultChainWatcherOptions, ...options };
    if (this.options.maxBlockRange < 1) throw new RangeError("maxBlockRange must be at least 1");
    this.logger = (modules.logger ?? pino({ level: "silent" })).child({ module: "chain-watcher" });
    this.topics = eventTopics(this.options.events);
  }

  /** The persisted position (null before the first handled block). */
  cursor(): Promise<Cursor | null> {
    return this.modules.cursors.get(this.options.cursorKey);
  }

  /** Polls until `signal` aborts; never throws for handler or RPC errors (they are logged and retried). */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const result = await this.poll();
      if (signal.aborted) break;
      // A poll that read new blocks is followed by another at once (blocks mined meanwhile: one eth_blockNumber when
      // there are none); caught up, idle or failed: wait.
      if (result.error === undefined && result.head !== null && result.head !== this.lastHead) {
        this.lastHead = result.head;
        continue;
      }
      try {
        await sleep(this.options.pollIntervalMs, signal);
      } catch {
        break; // aborted
      }
    }
  }

  /**
   * One poll: checks for a reorg, then reads and delivers every event up to the safe head, range by range.
   * Concurrent calls share the poll in progress. Never throws: a failure is reported in `error` and logged.
   */
  poll(): Promise<PollResult> {
    if (!this.polling) {
      this.polling = this.pollNow().finally(() => {
        this.polling = null;
      });
    }
    return this.polling;
  }

  private rpc<T>(action: string, fn: () => Promise<T>): Promise<T> {
    return withRetry(action, this.options.retry, fn);
  }

  private async safeHead(): Promise<number> {
    const latest = await this.rpc("eth_blockNumber", () => this.modules.provider.getBlockNumber());
    return latest - this.options.confirmations;
  }

  private async blockHash(n: number): Promise<string | null> {
    if (n < 0) return null;
    // the raw call: ethers' getBlock would format (checksum, parse) the whole block for its hash alone
    const block = await this.rpc(
      "eth_getBlockByNumber",
      () => this.modules.provider.send("eth_getBlockByNumber", [toQuantity(n), false]) as Promise<{ hash?: string } | null>,
    );
    return block?.hash ?? null;
  }

  private async pollNow(): Promise<PollResult> {
    const { cursors } = this.modules;
    const key = this.options.cursorKey;
    let handled = 0;
    let reorged = false;
    try {
      let cursor: Cursor = (await cursors.get(key)) ?? {
        blockNumber: this.options.fromBlock - 1,
        blockHash: null,
        logIndex: null,
      };

      // Nothing new since the last poll (the cursor at the safe head, no block partly handled): one round trip, but
      // for the reorg check every idleReorgCheckMs (a block replaced at the same height; a new block always checks).
      const head = await this.safeHead();
      const idle = cursor.logIndex === null && cursor.blockHash !== null && head === cursor.blockNumber;
      if (idle && Date.now() - this.reorgCheckedAt < this.options.idleReorgCheckMs) return { handled, head, reorged };
      this.reorgCheckedAt = Date.now();

      if (cursor.blockHash !== null && (await this.blockHash(cursor.blockNumber)) !== cursor.blockHash) {
        const blockNumber = Math.max(this.options.fromBlock - 1, cursor.blockNumber - this.options.reorgRewind);
        this.logger.warn({ from: cursor.blockNumber, to: blockNumber }, "reorg under the cursor: rewinding");
        cursor = { blockNumber, blockHash: await this.blockHash(blockNumber), logIndex: null };
        await cursors.set(key, cursor);
        reorged = true;
      }

      // A partly handled block is read again (its handled logs are skipped).
      let from = cursor.logIndex === null ? cursor.blockNumber + 1 : cursor.blockNumber;
      while (from <= head) {
        const to = Math.min(head, from + this.options.maxBlockRange - 1);
        const logs = await this.rpc("eth_getLogs", () =>
          this.modules.provider.getLogs({
            address: this.options.hub,
            topics: [this.topics],
            fromBlock: from,
            toBlock: to,
          }),
        );
        for (const log of sortLogs(logs)) {
          if (log.removed) continue;
          if (isHandled(cursor, log)) continue;
          if (this.modules.relevant && !this.modules.relevant(log)) continue; // the range's end moves the cursor past it
          const event = decodeHubLog(log, this.options.hub);
          if (event) {
            try {
              await this.modules.handler(event);
            } catch (e) {
              this.logger.error(
                { err: errorText(e), event: event.name, blockNumber: event.blockNumber, logIndex: event.logIndex },
                "event handler failed; will retry next poll",
              );
              return { handled, head: null, reorged, error: e };
            }
            handled++;
          }
          cursor = { blockNumber: log.blockNumber, blockHash: log.blockHash, logIndex: log.index };
          await cursors.set(key, cursor);
        }
        // Every log up to `to` is handled: the range is done.
        cursor = { blockNumber: to, blockHash: await this.blockHash(to), logIndex: null };
        await cursors.set(key, cursor);
        from = to + 1;
      }
      return { handled, head, reorged };
    } catch (e) {
      this.logger.warn({ err: errorText(e) }, "chain poll failed; will retry");
      return { handled, head: null, reorged, error: e };
    }
  }
}

function sortLogs(logs: readonly Log[]): Log[] {
  return [...logs].sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
}

function isHandled(cursor: Cursor, log: Log): boolean {
  if (log.blockNumber < cursor.blockNumber) return true;
  if (log.blockNumber > cursor.blockNumber) return false;
  return cursor.logIndex === null || log.index <= cursor.logIndex;
}

function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0].slice(0, 300);
}
