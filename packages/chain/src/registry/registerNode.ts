import type { Address, Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import { assertAddress, assertBytes32, assertUint } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

export interface RegisterNodeParams {
  enclaveId: Hex;
  /** 1 simulated, 2 sgx, 3 tdx (core's TEE_TYPES). */
  teeType: number;
  measurement: Hex;
  /** computePlatformIdHash(teeType, platformId) from @firn/core; verifiers check it against the evidence. */
  platformIdHash: Hex;
  enclaveAddress: Address;
  kemPublicKey: Hex;
  endpoint: string;
  evidenceDigest: Hex;
  /** Wei of stake; at least the registry's minNodeStake. */
  stake: bigint;
  /** The non-refundable registration fee, wei (default: read from the registry). */
  registrationFee?: bigint;
}

/**
 * Register (or re-register after Rejected/Exited) an Enclave ID with msg.value = stake +
 * registrationFee; the node starts Pending. Reverts (ChainRevertedError) StakeTooLow,
 * MeasurementNotAllowed, TeeTypeNotAllowed, EnclaveIdActive, EnclaveIdSlashed, EnforcedPause, ...
 */
export async function registerNode(clients: FirnClients, p: RegisterNodeParams): Promise<WriteResult> {
  const fee = p.registrationFee ?? (await getRegistrationFee(clients));
  const params = {
    enclaveId: assertBytes32(p.enclaveId, 'enclaveId'),
    teeType: Number(assertUint(p.teeType, 8, 'teeType')),
    measurement: assertBytes32(p.measurement, 'measurement'),
    platformIdHash: assertBytes32(p.platformIdHash, 'platformIdHash'),
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
    value: p.stake + fee,
  });
}

/** The registry's non-refundable registration fee, wei (credited to the governance treasury, decision 1671). */
export async function getRegistrationFee(clients: FirnClients): Promise<bigint> {
  try {
    return await clients.public.readContract({
      address: clients.addresses.registry,
      abi: firnRegistryAbi,
      functionName: 'registrationFee',
    });
  } catch (e) {
    throw toChainError(e, 'registrationFee');
  }
}
