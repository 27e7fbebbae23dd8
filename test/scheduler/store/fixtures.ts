/**
 * Shared builders for the task-state tests: a fresh in-memory database with every table, deals with sensible
 * defaults, deterministic addresses and hashes, a fixed clock.
 */
import { expect } from "chai";
import { ZeroHash, getAddress } from "ethers";
import { dealId as dealIdOf } from "../../../sdk/eip712";
import { openDatabase } from "../../../scheduler/store/state";
import type { Db } from "../../../scheduler/store/db";
import type { NewDeal } from "../../../scheduler/store/deals";
import { isStoreError } from "../../../scheduler/store/errors";

export const T0 = 1_700_000_000_000;
/** Deal start, unix seconds. */
export const START = 1_700_000_000;

export const addr = (n: number) => getAddress("0x" + n.toString(16).padStart(40, "0"));
export const hash = (n: number) => "0x" + n.toString(16).padStart(64, "0");
export const sig = (n: number) => "0x" + n.toString(16).padStart(130, "0");

export const REQUESTER = addr(0xa1);
export const SCHEDULER = addr(0xa2);
export const workerAddr = (i: number) => addr(0xb0 + i);

export function memoryDb(): Db {
  return openDatabase(":memory:");
}

export function deal(n = 1, o: Partial<NewDeal> = {}): NewDeal {
  return {
    dealId: dealIdOf(ZeroHash, n),
    app: 1n,
    dataset: 0n,
    workerpool: 1n,
    requester: REQUESTER,
    beneficiary: REQUESTER,
    scheduler: SCHEDULER,
    callback: null,
    category: 0n,
    trust: 2,
    params: '{"args":["x"]}',
    volume: 2,
    startTime: START,
    timeref: 60,
    appPrice: 10n ** 18n,
    datasetPrice: 0n,
    workerpoolPrice: 10n ** 19n,
    workerStakeRatio: 30,
    schedulerRewardRatio: 10,
    requestOrderHash: hash(0x99),
    ...o,
  };
}

export function expectStoreError(f: () => unknown, code: string): void {
  try {
    f();
  } catch (e) {
    expect(isStoreError(e), String(e)).to.equal(true);
    expect((e as { code: string }).code).to.equal(code);
    return;
  }
  expect.fail(`expected StoreError ${code}`);
}
