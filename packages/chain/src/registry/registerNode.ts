import type { Address, Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertAddress, assertBytes32, assertUint } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

export interface RegisterNodeParams {
  enclaveId: Hex;
  /** 1 simulated, 2 sgx, 3 tdx (core's TEE_TYPES). */
  teeType: number;
  measurement: Hex;
  enclaveAddress: Address;
  kemPublicKey: Hex;
  endpoint: string;
  evidenceDigest: Hex;
  /** Wei sent as stake; at least the registry's minNodeStake. */
  stake: bigint;
}

/** Register (or re-register after Rejected/Exited) an Enclave ID; the node starts Pending. */
export async function registerNode(clients: FirnClients, p: RegisterNodeParams): Promise<WriteResult> {
  const params = {
    enclaveId: assertBytes32(p.enclaveId, 'enclaveId'),
    teeType: Number(assertUint(p.teeType, 8, 'teeType')),
    measurement: assertBytes32(p.measurement, 'measurement'),
    enclaveAddress: assertAddress(p.enclaveAddress, 'enclaveAddress'),
    kemPublicKey: assertBytes32(p.kemPublicKey, 'kemPublicKey'),
    endpoint: p.endpoint,
    evidenceDigest: assertBytes32(p.evidenceDigest, 'evidenceDigest'),
  };
  return writeContractAndWait(clients, {
    address: clients.addresses.registry,
    abi: firnRegistryAbi,
    functionName: 'register',
    args: [params],
    value: p.stake,
  });
}
