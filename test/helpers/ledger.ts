/**
 * The escrow ledger of the fixture: every party's account (free balance and frozen funds), the kitty and the tokens
 * the hub holds, snapshotted before and after an action to assert exactly who moved and that no token was created
 * or lost.
 */
import { expect } from "chai";
import type { Fixture } from "./fixture";

export interface Entry {
  balance: bigint;
  frozen: bigint;
}

export interface Ledger {
  accounts: Record<string, Entry>;
  kitty: bigint;
  held: bigint;
}

/** Expected moves by party name (a field left out: no move). */
export type Change = Record<string, Partial<Entry>>;

/** Every account of the fixture by name; worker `i` is named `${workerPrefix}${i}` (w0, w1, … by default). */
export function parties(f: Fixture, workerPrefix = "w"): Record<string, string> {
  const p: Record<string, string> = {
    requester: f.requester.address,
    scheduler: f.scheduler.address,
    appOwner: f.appOwner.address,
    datasetOwner: f.datasetOwner.address,
    poolOwner: f.poolOwner.address,
    other: f.other.address,
    owner: f.owner.address,
  };
  f.workers.forEach((w, i) => (p[`${workerPrefix}${i}`] = w.address));
  return p;
}

/** Every party's escrow account, the kitty and the hub's token holdings. */
export async function ledger(f: Fixture): Promise<Ledger> {
  const accounts: Record<string, Entry> = {};
  for (const [name, address] of Object.entries(parties(f))) {
    const [balance, frozen] = await f.hub.accountOf(address);
    accounts[name] = { balance, frozen };
  }
  return { accounts, kitty: await f.hub.kitty(), held: await f.token.balanceOf(await f.hub.getAddress()) };
}

/**
 * Asserts every party moved exactly by `change` (parties not listed did not move at all), the kitty by `kitty`,
 * no token left or entered the hub, and the hub still holds exactly every balance, every frozen amount and the kitty.
 */
export function expectMoves(before: Ledger, after: Ledger, change: Change, kitty = 0n) {
  for (const name of Object.keys(change)) {
    if (!(name in before.accounts)) throw new Error(`unknown party ${name}`);
  }
  const actual: Record<string, Entry> = {};
  const expected: Record<string, Entry> = {};
  for (const name of Object.keys(before.accounts)) {
    actual[name] = {
      balance: after.accounts[name].balance - before.accounts[name].balance,
      frozen: after.accounts[name].frozen - before.accounts[name].frozen,
    };
    expected[name] = { balance: change[name]?.balance ?? 0n, frozen: change[name]?.frozen ?? 0n };
  }
  expect(actual).to.deep.equal(expected);
  expect(after.kitty - before.kitty, "kitty change").to.equal(kitty);
  expect(after.held, "tokens held by the hub").to.equal(before.held);
  let total = after.kitty;
  for (const e of Object.values(after.accounts)) total += e.balance + e.frozen;
  expect(after.held, "hub solvency").to.equal(total);
}
