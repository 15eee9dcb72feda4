import { hashTypedData } from 'viem';
import { bytesToHex, type Hex, hexBytes, utf8 } from './bytes.ts';
import { InvalidInputError } from './errors.ts';
import { taggedSha256 } from './hash.ts';
import { TAGS } from './tags.ts';

/**
 * Enclave-signed data (ARCHITECTURE §6, issue 12): what an app's `ctx.signData(digest, {topic})`
 * makes the enclave sign, in one definition shared by the enclave (which signs), the node (which
 * posts) and requesters and third parties (which check). The signed struct is the data ledger's
 * EIP-712 `SignedData(bytes32 enclaveId, bytes32 dataHash, string uri)` under the domain
 * {name "firn", version "1", chainId, verifyingContract: the FirnDataLedger}, with
 *   dataHash = taggedSha256("firn/signed-data/v1", topic, digest)
 *   uri      = "firn:data:" + topic
 * so an app's raw digest is never signed untagged, and the topic is bound in the hash and readable
 * back from the ledger's event.
 */

export const MAX_SIGNED_DATA_TOPIC_LENGTH = 64;
const TOPIC_RE = /^[a-z0-9][a-z0-9_.:-]*$/;
export const SIGNED_DATA_URI_PREFIX = 'firn:data:';

/** EIP-712 types; the field order must match FirnDataLedger.SIGNED_DATA_TYPEHASH. */
export const SIGNED_DATA_TYPES = {
  SignedData: [
    { name: 'enclaveId', type: 'bytes32' },
    { name: 'dataHash', type: 'bytes32' },
    { name: 'uri', type: 'string' },
  ],
} as const;

/** The data ledger a record is signed for (the EIP-712 domain's chainId and verifyingContract). */
export interface SignedDataLedger {
  chainId: number;
  /** FirnDataLedger address, 20 bytes hex. */
  address: Hex;
}

/** A topic is 1..64 characters of [a-z0-9_.:-], starting with a letter or digit; else E_INVALID_INPUT. */
export function assertSignedDataTopic(topic: unknown): string {
  if (
    typeof topic !== 'string' ||
    topic.length === 0 ||
    topic.length > MAX_SIGNED_DATA_TOPIC_LENGTH ||
    !TOPIC_RE.test(topic)
  )
    throw new InvalidInputError(
      `a signed-data topic must match ${TOPIC_RE.source} and be at most ${MAX_SIGNED_DATA_TOPIC_LENGTH} characters`,
    );
  return topic;
}

/** The ledger's `dataHash` of an app's 32-byte digest under a topic (E_INVALID_INPUT on a bad digest or topic). */
export function signedDataHash(topic: string, digest: Hex | Uint8Array): Hex {
  const d = typeof digest === 'string' ? hexBytes(digest, 'digest', 32) : digest;
  if (d.length !== 32) throw new InvalidInputError('a signed-data digest must be 32 bytes');
  return bytesToHex(taggedSha256(TAGS.signedData, utf8(assertSignedDataTopic(topic)), d));
}

/** The ledger's `uri` for a topic: "firn:data:" + topic. */
export function signedDataUri(topic: string): string {
  return `${SIGNED_DATA_URI_PREFIX}${assertSignedDataTopic(topic)}`;
}

/**
 * The EIP-712 digest the enclave signs and FirnDataLedger recovers the signer from:
 * hashTypedData(domain {name "firn", version "1", chainId, ledger}, SignedData{enclaveId, dataHash, uri}).
 */
export function signedDataDigest(
  ledger: SignedDataLedger,
  data: { enclaveId: Hex; dataHash: Hex; uri: string },
): Hex {
  return hashTypedData({
    domain: { name: 'firn', version: '1', chainId: ledger.chainId, verifyingContract: ledger.address },
    types: SIGNED_DATA_TYPES,
    primaryType: 'SignedData',
    message: data,
  });
}
