import { WORK_PROOF_TYPES, type WorkProofFields } from '@firn/core';
import { type Address, type Hex, hashTypedData, type TypedDataDomain } from 'viem';

/** EIP-712 domain of firn's signed structures: name "firn", version "1", chain, contract. */
export interface FirnDomain {
  chainId: number;
  verifyingContract: Address;
}

export function firnTypedDataDomain(domain: FirnDomain): TypedDataDomain {
  return { name: 'firn', version: '1', chainId: domain.chainId, verifyingContract: domain.verifyingContract };
}

/** The Work Proof an enclave signs when it finishes a job (one definition, in @firn/core). */
export type WorkProof = WorkProofFields;

/** EIP-712 types; the field order must match FirnJobMarket.WORK_PROOF_TYPEHASH. */
export const workProofTypes = WORK_PROOF_TYPES;

/** Everything viem's signTypedData needs to sign a Work Proof (domain = the job market). */
export function workProofTypedData(domain: FirnDomain, proof: WorkProof) {
  return {
    domain: firnTypedDataDomain(domain),
    types: workProofTypes,
    primaryType: 'WorkProof' as const,
    message: proof,
  };
}

/** The EIP-712 digest the job market recovers the enclave address from. */
export function hashWorkProof(domain: FirnDomain, proof: WorkProof): Hex {
  return hashTypedData(workProofTypedData(domain, proof));
}

/** Data an enclave signs to post on the data ledger. */
export interface SignedData {
  enclaveId: Hex;
  dataHash: Hex;
  uri: string;
}

/** EIP-712 types; must match FirnDataLedger.SIGNED_DATA_TYPEHASH. */
export const signedDataTypes = {
  SignedData: [
    { name: 'enclaveId', type: 'bytes32' },
    { name: 'dataHash', type: 'bytes32' },
    { name: 'uri', type: 'string' },
  ],
} as const;

/** Everything signTypedData needs to sign data for the ledger (domain = the data ledger). */
export function signedDataTypedData(domain: FirnDomain, data: SignedData) {
  return {
    domain: firnTypedDataDomain(domain),
    types: signedDataTypes,
    primaryType: 'SignedData' as const,
    message: data,
  };
}

/** The EIP-712 digest the data ledger recovers the enclave address from. */
export function hashSignedData(domain: FirnDomain, data: SignedData): Hex {
  return hashTypedData(signedDataTypedData(domain, data));
}
