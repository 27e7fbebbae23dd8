/**
 * TxSender: the one way a key sends transactions. Submissions are serialized (one at a time per key) and take their
 * nonce from a local counter (fetched as the `pending` count once, then incremented), so concurrent callers never
 * reuse or skip a nonce and need no round trip per send; confirmations are awaited outside the queue, so many
 * transactions can be in flight at once.
 *
 * Per submission:
 *  1. estimate gas, or with a gas limit given, simulate the call (`eth_call`) or skip the check (and read the fees in
 *     the same round trip): a revert here is the contract's answer and is thrown as ChainError REVERTED, never retried
 *     (the nonce is not consumed);
 *  2. sign once with the next nonce, broadcast; on a transport failure the SAME signed bytes are broadcast again
 *     (same hash, so a send that did arrive is never duplicated);
 *  3. on a nonce conflict (nonce too low, replacement underpriced: another process used this key) the counter is
 *     resynced from the node and the transaction re-signed; after any broadcast error the node is first asked
 *     whether it already holds our hash (lost response, Hardhat mining a reverting transaction), which then counts
 *     as sent.
 * Transient failures back off exponentially with jitter, up to `maxAttempts`.
 *
 * Gas estimation runs against the latest block: a transaction that depends on another still pending must be sent
 * after that one is confirmed (the client's write methods resolve only once confirmed, so awaiting them suffices).
 * One TxSender per key per process: a second sender on the same key would race for nonces (it would recover
 * through the resync, at the cost of retries).
 */
import { keccak256 } from "ethers";
import type { BaseWallet, JsonRpcProvider, TransactionReceipt } from "ethers";
import type { Logger } from "pino";
import {
  ChainError,
  abortedError,
  backoffDelay,
  classifyError,
  failureError,
  revertError,
  sleep,
  withRetry,
  type RetryPolicy,
} from "./errors";

export interface TxSenderOptions extends RetryPolicy {
  /** Blocks that must include the transaction (1 = mined). */
  confirmations: number;
  /** The gas limit is the estimate plus this percentage. */
  gasHeadroomPercent: number;
  /** Give up waiting for confirmations after this long (the nonce counter is then resynced). */
  confirmTimeoutMs: number;
  /** How often to poll for the receipt. */
  receiptPollMs: number;
  /** An unestimated transaction reuses the fees read for another one this recently (0: always reads its own). */
  feeReuseMs: number;
}

export const defaultTxSenderOptions: TxSenderOptions = {
  confirmations: 1,
  gasHeadroomPercent: 25,
  confirmTimeoutMs: 120_000,
  receiptPollMs: 250,
  feeReuseMs: 1_000,
  maxAttempts: 6,
  backoffMs: 200,
  maxBackoffMs: 5_000,
};

export interface TxRequest {
  /** What is being done, for errors and logs (e.g. `finalize`). */
  action: string;
  to: string;
  data: string;
  value?: bigint;
  /** Gas added on top of the estimate and its headroom (e.g. for a callback whose gas must be guaranteed). */
  extraGas?: bigint;
  /** Overrides confirmations for this transaction. */
  confirmations?: number;
  /**
   * Called once the gas estimate passed (the contract accepts the call on the latest state), before the transaction is
   * signed and broadcast: work that only makes sense if the transaction goes out can start while it is mined.
   */
  onEstimated?: () => void;
  /**
   * Send with this gas limit, without an estimate: for a transaction that depends on one sent just before it and not
   * mined yet (see `sendAll`), which an estimate on the latest state would see reverting. It may revert on chain.
   */
  gasLimit?: bigint;
  /**
   * With `gasLimit`: the call is first run on the latest state with `eth_call` and that gas limit (with the fee read,
   * in one round trip), and a revert there (out of gas included) is ChainError REVERTED, nothing sent, as with an
   * estimate. The node executes the call once, where an estimate executes it twice or more. `onEstimated` is called
   * once it passed.
   */
  simulate?: boolean;
}

type FeeData = Awaited<ReturnType<JsonRpcProvider["getFeeData"]>>;

interface Signed {
  raw: string;
  hash: string;
  nonce: number;
  gasLimit: bigint;
  fees: FeeData;
}

export class TxSender {
  private queue: Promise<unknown> = Promise.resolve();
  private nextNonce: number | null = null;
  private lastFees?: { fees: FeeData; at: number };
  readonly options: TxSenderOptions;

  constructor(
    options: Partial<TxSenderOptions>,
    private readonly modules: { wallet: BaseWallet; provider: JsonRpcProvider; logger: Logger },
  ) {
    this.options = { ...defaultTxSenderOptions, ...options };
  }

  get address(): string {
    return this.modules.wallet.address;
  }

  /** Submits `req` (serialized with every other send of this key) and resolves with its confirmed receipt. */
  send(req: TxRequest, signal?: AbortSignal): Promise<TransactionReceipt> {
    return this.sendAll([req], signal)[0];
  }

  /**
   * Sends `reqs` back to back, in order, without waiting for one to be mined before the next is signed: on a chain
   * with blocks they can land in the same block. Each is confirmed on its own (one promise per request). Requests
   * after the first should carry a `gasLimit` when they depend on the ones before (their estimate would revert); they
   * reuse the first one's fees. When one cannot be sent (its estimate reverts, the node refuses it), the ones after
   * it are not sent either: their promises reject with ChainError ABORTED.
   */
  sendAll(reqs: TxRequest[], signal?: AbortSignal): Promise<TransactionReceipt>[] {
    const submitted = this.enqueue(async () => {
      const out: (Signed | Error)[] = [];
      let fees: FeeData | undefined;
      for (const req of reqs) {
        if (out.some((x) => x instanceof Error)) {
          out.push(new ChainError("ABORTED", `${req.action}: not sent, the transaction before it failed`, { action: req.action }));
          continue;
        }
        try {
          const signed = await this.submit(req, signal, fees);
          fees = signed.fees;
          out.push(signed);
        } catch (e) {
          out.push(e as Error);
        }
      }
      return out;
    });
    return reqs.map(async (req, i) => {
      const signed = (await submitted)[i];
      if (signed instanceof Error) throw signed;
      return this.confirm(req, signed, signal);
    });
  }

  /** Forgets the local nonce: the next send fetches it from the node. */
  resync(): void {
    this.nextNonce = null;
  }

  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async submit(req: TxRequest, signal?: AbortSignal, fees?: FeeData): Promise<Signed> {
    const { provider, logger } = this.modules;
    const hook = req.onEstimated;
    if (hook) {
      let called = false; // once, even when a nonce conflict re-estimates and re-signs
      req = { ...req, onEstimated: () => void (called || ((called = true), hook())) };
    }
    let signed: Signed | null = null;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw abortedError(req.action);
      try {
        if (signed === null) signed = await this.sign(req, fees);
        // the raw RPC call: ethers' broadcastTransaction would parse the transaction back and recover its sender (an
        // elliptic-curve recovery per transaction, for an address we know)
        await provider.send("eth_sendRawTransaction", [signed.raw]);
        this.nextNonce = signed.nonce + 1;
        logger.debug({ action: req.action, txHash: signed.hash, nonce: signed.nonce }, "transaction sent");
        return signed;
      } catch (e) {
        if (e instanceof ChainError) throw e; // a revert at estimation, or a definitive failure
        if (signed !== null && (await this.isKnown(signed.hash))) {
          this.nextNonce = signed.nonce + 1;
          return signed;
        }
        const kind = classifyError(e);
        if (kind === "revert") throw revertError(req.action, e, signed?.hash);
        if (kind === "nonce") {
          // Someone else used this key's nonce: resync and re-sign.
          this.nextNonce = null;
          signed = null;
        } else if (kind !== "transient") {
          this.nextNonce = null;
          throw failureError(req.action, e);
        }
        if (attempt >= this.options.maxAttempts) {
          this.nextNonce = null;
          throw failureError(req.action, e);
        }
        logger.warn({ action: req.action, attempt, kind, err: firstLine(e) }, "transaction send failed, retrying");
        await sleep(backoffDelay(attempt, this.options.backoffMs, this.options.maxBackoffMs), signal);
      }
    }
  }

  /**
   * Estimates (a revert throws ChainError REVERTED), then signs with the next nonce. With `req.gasLimit`, no estimate:
   * the call is simulated instead when `req.simulate` says so, and otherwise `knownFees` (read for the transaction just
   * before) or recent fees save the fee read.
   */
  private async sign(req: TxRequest, knownFees?: FeeData): Promise<Signed> {
    const { provider, wallet } = this.modules;
    if (this.nextNonce === null) this.nextNonce = await provider.getTransactionCount(wallet.address, "pending");
    const nonce = this.nextNonce;
    let gasLimit: bigint;
    let fees: FeeData;
    // a revert of the estimate or of the simulation is the contract's answer
    const checked = <T>(reply: Promise<T>) =>
      reply.catch((e: unknown) => {
        throw classifyError(e) === "revert" ? revertError(req.action, e) : e;
      });
    const call = { from: wallet.address, to: req.to, data: req.data, value: req.value ?? 0n };
    if (req.gasLimit !== undefined && !req.simulate) {
      gasLimit = req.gasLimit;
      fees = knownFees ?? this.recentFees() ?? this.feesRead(await provider.getFeeData());
    } else {
      // the check (estimate or simulation) and the fees go out together (one round trip); with both known,
      // populateTransaction asks nothing
      const readFees = provider.getFeeData().then((f) => this.feesRead(f));
      if (req.gasLimit !== undefined) {
        // with the limit it will be sent with: a call that needs more reverts here (out of gas), not on chain
        [, fees] = await Promise.all([checked(provider.call({ ...call, gasLimit: req.gasLimit })), readFees]);
        gasLimit = req.gasLimit;
      } else {
        let estimate: bigint;
        [estimate, fees] = await Promise.all([checked(provider.estimateGas(call)), readFees]);
        gasLimit = estimate + (estimate * BigInt(this.options.gasHeadroomPercent)) / 100n + (req.extraGas ?? 0n);
      }
      try {
        req.onEstimated?.();
      } catch (e) {
        this.modules.logger.warn({ action: req.action, err: firstLine(e) }, "onEstimated hook failed");
      }
    }
    const eip1559 = fees.maxFeePerGas !== null && fees.maxPriorityFeePerGas !== null;
    const tx = await wallet.populateTransaction({
      to: req.to,
      data: req.data,
      value: req.value ?? 0n,
      gasLimit,
      nonce,
      ...(eip1559 ? { type: 2, maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas } : {}),
    });
    const raw = await wallet.signTransaction(tx);
    return { raw, hash: keccak256(raw), nonce, gasLimit, fees };
  }

  private feesRead(fees: FeeData): FeeData {
    this.lastFees = { fees, at: Date.now() };
    return fees;
  }

  /**
   * The fees read for a transaction less than `feeReuseMs` ago, for an unestimated one (which would otherwise pay a
   * round trip for them alone). Safe on an EIP-1559 chain: ethers' maxFeePerGas is twice the base fee plus the tip, and
   * the base fee rises by 12.5% a block at most.
   */
  private recentFees(): FeeData | undefined {
    const last = this.lastFees;
    return last && Date.now() - last.at < this.options.feeReuseMs ? last.fees : undefined;
  }

  private async isKnown(hash: string): Promise<boolean> {
    try {
      return (await this.modules.provider.getTransaction(hash)) !== null;
    } catch {
      return false;
    }
  }

  /** Polls for the receipt until it has enough confirmations; a failed receipt becomes ChainError REVERTED. */
  private async confirm(req: TxRequest, signed: Signed, signal?: AbortSignal): Promise<TransactionReceipt> {
    const { provider } = this.modules;
    const wanted = Math.max(1, req.confirmations ?? this.options.confirmations);
    const deadline = Date.now() + this.options.confirmTimeoutMs;
    const policy = { ...this.options, maxAttempts: 3 };
    for (;;) {
      if (signal?.aborted) throw abortedError(req.action);
      let receipt: TransactionReceipt | null = null;
      let head = 0;
      try {
        receipt = await withRetry(req.action, policy, () => provider.getTransactionReceipt(signed.hash), signal);
        if (receipt !== null && wanted > 1) head = await provider.getBlockNumber();
      } catch (e) {
        if (e instanceof ChainError && e.code === "ABORTED") throw e;
        receipt = null; // keep polling until the deadline
      }
      if (receipt !== null && (wanted === 1 || head - receipt.blockNumber + 1 >= wanted)) {
        if (receipt.status !== 1) throw await this.failedReceipt(req, signed, receipt);
        return receipt;
      }
      if (Date.now() >= deadline) {
        this.nextNonce = null; // the transaction may never land: let the next send see the node's view
        throw new ChainError("TIMEOUT", `${req.action}: not confirmed within ${this.options.confirmTimeoutMs} ms`, {
          action: req.action,
          txHash: signed.hash,
        });
      }
      await sleep(this.options.receiptPollMs, signal);
    }
  }

  /** Replays a failed transaction on the state before its block to recover the custom error (best effort). */
  private async failedReceipt(req: TxRequest, signed: Signed, receipt: TransactionReceipt): Promise<ChainError> {
    const { provider, wallet } = this.modules;
    try {
      await provider.call({
        from: wallet.address,
        to: req.to,
        data: req.data,
        value: req.value ?? 0n,
        gasLimit: signed.gasLimit,
        blockTag: Math.max(0, receipt.blockNumber - 1),
      });
    } catch (e) {
      if (classifyError(e) === "revert") return revertError(req.action, e, signed.hash);
    }
    const outOfGas = receipt.gasUsed >= signed.gasLimit ? " (out of gas)" : "";
    return new ChainError("REVERTED", `${req.action} reverted on chain${outOfGas}`, {
      action: req.action,
      txHash: signed.hash,
    });
  }
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0].slice(0, 200);
}
