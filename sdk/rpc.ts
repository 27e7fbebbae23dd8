/**
 * The JSON-RPC provider every Concord daemon and the CLI use: pinned to one chain id (no `eth_chainId` probe per
 * call), no response cache (the chain state changes under us), and no batch stall. ethers' default waits 10 ms
 * before sending a request so that more can join its batch; a daemon pays that on every round trip of its critical
 * path (estimate, broadcast, receipt, each read). With a stall of 0, requests issued in the same event-loop turn still
 * go out as one batch.
 */
import { JsonRpcProvider, Network } from "ethers";

export function rpcProvider(url: string, chainId: bigint | number): JsonRpcProvider {
  const network = Network.from(chainId);
  return new JsonRpcProvider(url, network, { staticNetwork: network, cacheTimeout: -1, batchStallTime: 0 });
}
