/**
 * secp256k1 through libsecp256k1: the `secp256k1` package's native binding (it falls back to a pure-JavaScript curve
 * by itself when the binding cannot load). The daemons sign or check a signature for every transaction, order,
 * authorization, login, commit and reveal; ethers' pure-JavaScript curve takes ~0.3 ms per signature and ~1.5 ms per
 * recovery, which made signature recovery the scheduler's largest CPU cost per task. The signatures are the same
 * RFC 6979 deterministic ones ethers makes (tested byte for byte) and the recovered addresses the same.
 */
import secp256k1 from "secp256k1";
import {
  Signature,
  SigningKey,
  TypedDataEncoder,
  Wallet,
  computeAddress,
  concat,
  getBytes,
  hashMessage,
  hexlify,
  type BytesLike,
  type Provider,
  type SignatureLike,
  type TypedDataDomain,
  type TypedDataField,
} from "ethers";

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

/** ethers' `verifyTypedData`: the signer of an EIP-712 message. */
export function typedDataSigner(
  domain: TypedDataDomain,
  types: Record<string, TypedDataField[]>,
  value: Record<string, unknown>,
  signature: SignatureLike,
): string {
  return recoverSigner(TypedDataEncoder.hash(domain, types, value), signature);
}

/** ethers' `verifyMessage`: the signer of an EIP-191 personal message. */
export function messageSigner(message: string | Uint8Array, signature: SignatureLike): string {
  return recoverSigner(hashMessage(message), signature);
}
