/**
 * What the API tests share: an express app served on 127.0.0.1:0 and reached with real HTTP (fetch), a fake
 * `OrderChecks` whose chain answers each test sets, and deterministic signers.
 */
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Wallet, getAddress, id } from "ethers";
import type { Router } from "express";
import { createApi } from "../../../scheduler/api";
import type { AssetKind, OnChainOrderState, OrderChecks } from "../../../scheduler/api/checks";

export interface Served {
  url: string;
  close(): Promise<void>;
}

/** Serves `routers` (plus the 404 and error handlers) on a free loopback port. */
export async function serve(routers: Router[]): Promise<Served> {
  const server: Server = createServer(createApi(routers));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Reply {
  status: number;
  contentType: string | null;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function reply(res: Response): Promise<Reply> {
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, contentType: res.headers.get("content-type"), text, json };
}

export async function get(url: string): Promise<Reply> {
  return reply(await fetch(url));
}

/** POSTs `body` as JSON, or `raw` text with `contentType`. */
export async function post(url: string, body: unknown, raw?: { text: string; contentType?: string }): Promise<Reply> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": raw?.contentType ?? "application/json" },
    body: raw ? raw.text : JSON.stringify(body),
  });
  return reply(res);
}

/** A deterministic key per name (never used outside tests). */
export function wallet(name: string): Wallet {
  return new Wallet(id(`concord test key: ${name}`));
}

/** An `OrderChecks` whose answers the test sets; `failing` makes every question throw (chain unreachable). */
export class FakeChecks implements OrderChecks {
  time = 1_700_000_000n;
  owners = new Map<string, string>();
  nonces = new Map<string, bigint>();
  states = new Map<string, OnChainOrderState>();
  /** EIP-1271 wallets: address → the signature it accepts. */
  contractSignatures = new Map<string, string>();
  failing = false;

  setOwner(kind: AssetKind, id: bigint, owner: string): void {
    this.owners.set(`${kind}:${id}`, getAddress(owner));
  }

  private check(): void {
    if (this.failing) throw new Error("connect ECONNREFUSED 127.0.0.1:8545");
  }

  async now(): Promise<bigint> {
    this.check();
    return this.time;
  }
  async ownerOf(kind: AssetKind, id: bigint): Promise<string | null> {
    this.check();
    return this.owners.get(`${kind}:${id}`) ?? null;
  }
  async orderNonce(signer: string): Promise<bigint> {
    this.check();
    return this.nonces.get(getAddress(signer)) ?? 0n;
  }
  async orderState(hash: string): Promise<OnChainOrderState> {
    this.check();
    return this.states.get(hash.toLowerCase()) ?? { consumed: 0n, presigned: false, cancelled: false };
  }
  async isValidContractSignature(signer: string, _hash: string, signature: string): Promise<boolean> {
    this.check();
    return this.contractSignatures.get(getAddress(signer)) === signature;
  }
}
