/**
 * secp256k1 through libsecp256k1: the `secp256k1` package's native binding (it falls back to a pure-JavaScript curve
 * by itself when the binding cannot load). The daemons sign or check a signature for every transaction, order,
 * authorization, login, commit and reveal; ethers' pure-JavaScript curve takes ~0.3 ms per signature and ~1.5 ms per
 * recovery, which made signature recovery the scheduler's largest CPU cost per task. The signatures are the same
 * RFC 6979 deterministic ones ethers makes (tested byte for byte) and the recovered addresses the same.
 *
 * keccak256 likewise: importing this module registers the `keccak` package's native binding as ethers' keccak256, which
 * every checksummed address, EIP-712 digest, transaction hash and event topic goes through (~1 µs a hash instead of
 * ~9 µs in JavaScript). Where the binding cannot load, ethers keeps its own.
 */
import secp256k1 from "secp256k1";
import {
  Signature,
  SigningKey,
  Wallet,
  computeAddress,
  concat,
  getBytes,
  hashMessage,
  hexlify,
  keccak256,
  type BytesLike,
  type Provider,
  type SignatureLike,
} from "ethers";

/**
 * Makes ethers' keccak256 the native one, once checked against ethers' own on a known input. Returns whether it did
 * (false: the binding did not load or disagreed, and ethers' JavaScript keccak stays).
 */
function registerNativeKeccak(): boolean {
  let create: typeof import("keccak");
  try {
    // the binding itself: the package's main entry falls back to a JavaScript keccak slower than ethers'
    create = require("keccak/bindings") as typeof import("keccak");
  } catch {
    return false;
  }
  const native = (data: Uint8Array): Uint8Array =>
    create("keccak256").update(Buffer.from(data.buffer, data.byteOffset, data.byteLength)).digest();
  const probe = new TextEncoder().encode("concord keccak256 probe");
  if (hexlify(native(probe)) !== keccak256(probe)) return false;
  try {
    keccak256.register(native);
  } catch {
    return false; // locked by someone else
  }
  return true;
}

/** Whether ethers' keccak256 is the native one in this process. */
export const nativeKeccak = registerNativeKeccak();

/** An ethers SigningKey whose `sign` runs in libsecp256k1; everything else (public key, ECDH) is ethers'. */
export class FastSigningKey extends SigningKey {
  override sign(digest: BytesLike): Signature {
    const bytes = getBytes(digest, "digest");
    if (bytes.length !== 32) throw new TypeError(`digest: expected 32 bytes, got ${bytes.length}`);
    const { signature, recid } = secp256k1.ecdsaSign(bytes, getBytes(this.privateKey));
    return Signature.from({ r: hexlify(signature.subarray(0, 32)), s: hexlify(signature.subarray(32)), v: 27 + recid });
  }
}

/** An ethers Wallet for `privateKey` that signs with libsecp256k1. */
export function fastWallet(privateKey: string, provider?: Provider | null): Wallet {
  return new Wallet(new FastSigningKey(privateKey), provider);
}

/** The address whose key signed `digest` (throws on a malformed or unrecoverable signature, as ethers does). */
export function recoverSigner(digest: BytesLike, signature: SignatureLike): string {
  const sig = Signature.from(signature);
  const publicKey = secp256k1.ecdsaRecover(getBytes(concat([sig.r, sig.s])), sig.yParity, getBytes(digest, "digest"), false);
  return computeAddress(hexlify(publicKey));
}

/** ethers' `verifyMessage`: the signer of an EIP-191 personal message. */
export function messageSigner(message: string | Uint8Array, signature: SignatureLike): string {
  return recoverSigner(hashMessage(message), signature);
}
