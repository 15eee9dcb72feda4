import {
  bytesToHex,
  type Hex,
  hexBytes,
  InvalidInputError,
  keccak256,
  utf8,
  type WorkProofDomain,
  type WorkProofFields,
} from '@firn/core';

/**
 * The EIP-712 digest of a Work Proof, encoded directly: keccak256(0x19 0x01 || domainSeparator ||
 * hashStruct(WorkProof)), EIP-712 §"Specification of the eth_signTypedData JSON RPC", with the
 * domain {name "firn", version "1", chainId, verifyingContract: jobMarket} and the type of
 * `WORK_PROOF_TYPES` (@firn/core), so the bytes equal core's `workProofDigest` (viem's
 * hashTypedData; tested on random proofs) without its generic type walk. The domain separator is
 * kept per (chainId, jobMarket). Shapes: bytes32 fields as 0x-hex of 32 bytes, uint64 fields as
 * bigints in [0, 2^64); `chainId` a non-negative safe integer. Raises InvalidInputError otherwise.
 */
export function workProofDigestBytes(domain: WorkProofDomain, proof: WorkProofFields): Uint8Array {
  const msg = new Uint8Array(32 * 10);
  msg.set(WORK_PROOF_TYPEHASH, 0);
  const words: [keyof WorkProofFields, number][] = [
    ['jobId', 1],
    ['enclaveId', 2],
    ['measurement', 3],
    ['workloadHash', 4],
    ['inputCommitment', 5],
    ['outputCommitment', 6],
  ];
  for (const [name, i] of words) msg.set(hexBytes(proof[name] as Hex, name, 32), 32 * i);
  const u64: [keyof WorkProofFields, number][] = [
    ['startedAt', 7],
    ['finishedAt', 8],
    ['workUnits', 9],
  ];
  for (const [name, i] of u64) {
    const v = proof[name];
    if (typeof v !== 'bigint' || v < 0n || v > U64_MAX)
      throw new InvalidInputError(`work proof ${name} must be a uint64`);
    new DataView(msg.buffer).setBigUint64(32 * i + 24, v);
  }
  const out = new Uint8Array(66);
  out[0] = 0x19;
  out[1] = 0x01;
  out.set(domainSeparator(domain), 2);
  out.set(keccak256(msg), 34);
  return keccak256(out);
}

const U64_MAX = (1n << 64n) - 1n;
const WORK_PROOF_TYPEHASH = keccak256(
  utf8(
    'WorkProof(bytes32 jobId,bytes32 enclaveId,bytes32 measurement,bytes32 workloadHash,bytes32 inputCommitment,bytes32 outputCommitment,uint64 startedAt,uint64 finishedAt,uint64 workUnits)',
  ),
);
const DOMAIN_TYPEHASH = keccak256(
  utf8('EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)'),
);
const separators = new Map<string, Uint8Array>();

/**
 * The EIP-712 domain separator of {name "firn", version "1", chainId, verifyingContract: jobMarket}
 * (32 bytes), kept per (chainId, jobMarket). Shared by the Work Proof and the JobFailure digests.
 * Raises InvalidInputError for a bad chainId or address.
 */
export function domainSeparator(domain: WorkProofDomain): Uint8Array {
  if (!Number.isSafeInteger(domain.chainId) || domain.chainId < 0)
    throw new InvalidInputError('domain chainId must be a non-negative integer');
  const market = hexBytes(domain.jobMarket, 'jobMarket', 20);
  const key = `${domain.chainId}:${bytesToHex(market)}`;
  const hit = separators.get(key);
  if (hit !== undefined) return hit;
  const enc = new Uint8Array(32 * 5);
  enc.set(DOMAIN_TYPEHASH, 0);
  enc.set(keccak256(utf8('firn')), 32);
  enc.set(keccak256(utf8('1')), 64);
  new DataView(enc.buffer).setBigUint64(96 + 24, BigInt(domain.chainId));
  enc.set(market, 128 + 12);
  const sep = keccak256(enc);
  if (separators.size >= 16) separators.delete(separators.keys().next().value as string);
  separators.set(key, sep);
  return sep;
}
