/**
 * EIP-2612 permits of the escrow token, for deposits and deposit-and-match with a permit.
 */
import { ethers } from "hardhat";
import { Signature, Signer } from "ethers";
import type { Fixture } from "./fixture";

/**
 * An EIP-2612 permit of `value` tokens from `owner` to the hub, at the owner's current token nonce. `owner` is a
 * signer, or the address of one of the Hardhat network's accounts.
 */
export async function permitSignature(f: Fixture, owner: Signer | string, value: bigint, deadline: bigint) {
  const signer = typeof owner === "string" ? await ethers.getSigner(owner) : owner;
  const ownerAddress = typeof owner === "string" ? owner : await owner.getAddress();
  const nonce = await f.token.nonces(ownerAddress);
  const { chainId } = await ethers.provider.getNetwork();
  const sig = await signer.signTypedData(
    { name: await f.token.name(), version: "1", chainId, verifyingContract: await f.token.getAddress() },
    {
      Permit: [
        { name: "owner", type: "address" },
        { name: "spender", type: "address" },
        { name: "value", type: "uint256" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    { owner: ownerAddress, spender: await f.hub.getAddress(), value, nonce, deadline },
  );
  return Signature.from(sig);
}
