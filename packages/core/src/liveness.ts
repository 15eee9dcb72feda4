import { hashTypedData } from 'viem';
import { type Hex, hexBytes, utf8 } from './bytes.ts';
import { InvalidInputError } from './errors.ts';
import { taggedKeccak256 } from './hash.ts';
import { TEE_TYPES, type TeeTypeName, teeTypeCode } from './identity.ts';
import { TAGS } from './tags.ts';

/**
 * Liveness answers (issue 9, docs/decisions/0800-economics.md): a verifier challenges a node with
 * a nonce on chain; the node's enclave signs the EIP-712 `LivenessAnswer` with its registered
 * enclave key. Shared here so the enclave (which signs) and the host and verifiers (which check)
 * use one definition; the field order must match IFirnRewards.LivenessAnswer.
 */

export interface LivenessDomain {
  chainId: number;
  /** The rewards contract (EIP-712 verifyingContract). */
  rewards: Hex;
}

export interface LivenessAnswerFields {
  challengeId: Hex;
  nonce: Hex;
  enclaveId: Hex;
  /** The epoch the challenge was issued in. */
  epoch: bigint;
}

export const LIVENESS_ANSWER_TYPES = {
  LivenessAnswer: [
    { name: 'challengeId', type: 'bytes32' },
    { name: 'nonce', type: 'bytes32' },
    { name: 'enclaveId', type: 'bytes32' },
    { name: 'epoch', type: 'uint64' },
  ],
} as const;

const U64_MAX = (1n << 64n) - 1n;

/**
 * The EIP-712 digest of a LivenessAnswer under domain {name "firn", version "1", chainId,
 * rewards}. Throws InvalidInputError on a malformed field. A WorkProof digest can never equal it:
 * the type hashes differ.
 */
export function livenessAnswerDigest(domain: LivenessDomain, answer: LivenessAnswerFields): Hex {
  hexBytes(domain.rewards, 'rewards', 20);
  for (const k of ['challengeId', 'nonce', 'enclaveId'] as const) hexBytes(answer[k], k, 32);
  if (answer.epoch < 0n || answer.epoch > U64_MAX) throw new InvalidInputError('epoch must be a uint64');
  if (!Number.isSafeInteger(domain.chainId) || domain.chainId <= 0)
    throw new InvalidInputError('chainId must be a positive integer');
  return hashTypedData({
    domain: { name: 'firn', version: '1', chainId: domain.chainId, verifyingContract: domain.rewards },
    types: LIVENESS_ANSWER_TYPES,
    primaryType: 'LivenessAnswer',
    message: answer,
  });
}

/** Platform families: TEE types whose attestations name the same physical platform id space. */
export type PlatformFamily = 'intel-dcap' | 'simulated' | 'aws-nitro' | 'amd-sev-snp';

/**
 * The platform family of a TEE type. SGX and TDX quotes of one Intel machine are both DCAP quotes
 * certified by the same PCK certificate and carry the same PPID, so they share the `intel-dcap`
 * family; the simulated TEE is its own family. Throws InvalidInputError on an unknown type.
 */
export function platformFamily(teeType: TeeTypeName): PlatformFamily {
  const code = teeTypeCode(teeType);
  // A Nitro platform id is the parent EC2 instance id its attestation document names: its own space.
  if (code === TEE_TYPES.nitro) return 'aws-nitro';
  // An AMD SEV-SNP platform id is the chip id its VCEK certifies: its own space.
  if (code === TEE_TYPES['sev-snp']) return 'amd-sev-snp';
  return code === TEE_TYPES.simulated ? 'simulated' : 'intel-dcap';
}

/**
 * The platform id as the registry records it: keccak256 over the tagged (platform family name,
 * platformId) (`firn/platform-id/v2`, family from platformFamily: SGX and TDX share `intel-dcap`).
 * One physical machine has one platformIdHash whatever app it hosts and whichever of its TEE
 * types runs it, so it earns one capacity share; the id itself (a PPID, a device id) never goes on
 * chain. platformId: 1..64 bytes, else InvalidInputError. See docs/decisions/0800-economics.md.
 */
export function computePlatformIdHash(teeType: TeeTypeName, platformId: Uint8Array): Uint8Array {
  if (platformId.length === 0 || platformId.length > 64)
    throw new InvalidInputError('platformId must be 1..64 bytes');
  return taggedKeccak256(TAGS.platformId, utf8(platformFamily(teeType)), platformId);
}
