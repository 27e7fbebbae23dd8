/**
 * Order-set helpers for the Clerk tests: the four kinds of order, their hashes and signers, and matching with the
 * canMatch / matchOrders parity check.
 */
import { expect } from "chai";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { hashOrder } from "../../sdk/eip712";
import type { Fixture, OrderSet } from "./fixture";

export type Kind = "app" | "dataset" | "workerpool" | "request";
export const KINDS: Kind[] = ["app", "dataset", "workerpool", "request"];
export const article = (kind: Kind) => (kind === "app" ? "an app" : `a ${kind}`);

/** The EIP-712 hash of `kind`'s order of the set. */
export function hashOf(f: Fixture, kind: Kind, o: OrderSet): string {
  switch (kind) {
    case "app":
      return hashOrder(f.domain, "AppOrder", o.app);
    case "dataset":
      return hashOrder(f.domain, "DatasetOrder", o.dataset);
    case "workerpool":
      return hashOrder(f.domain, "WorkerpoolOrder", o.workerpool);
    case "request":
      return hashOrder(f.domain, "RequestOrder", o.request);
  }
}

/** Who signs each kind of order in the fixture (the asset owner, or the requester). */
export function signerOf(f: Fixture, kind: Kind): HardhatEthersSigner {
  return { app: f.appOwner, dataset: f.datasetOwner, workerpool: f.poolOwner, request: f.requester }[kind];
}

export function match(f: Fixture, o: OrderSet, sender?: HardhatEthersSigner) {
  return f.hub.connect(sender ?? f.requester).matchOrders(o.app, o.dataset, o.workerpool, o.request);
}

/** matchOrders reverts with `name(args)` and canMatch reports exactly that revert data. */
export async function expectMatchFails(f: Fixture, o: OrderSet, name: string, args: unknown[]) {
  const [ok, reason] = await f.hub.canMatch(o.app, o.dataset, o.workerpool, o.request);
  expect(ok, "canMatch ok").to.equal(false);
  expect(reason, "canMatch reason").to.equal(f.hub.interface.encodeErrorResult(name, args));
  await expect(match(f, o))
    .to.be.revertedWithCustomError(f.hub, name)
    .withArgs(...args);
}

/** canMatch accepts the set. */
export async function expectMatchable(f: Fixture, o: OrderSet) {
  const [ok, reason] = await f.hub.canMatch(o.app, o.dataset, o.workerpool, o.request);
  expect(ok, "canMatch ok").to.equal(true);
  expect(reason).to.equal("0x");
}
