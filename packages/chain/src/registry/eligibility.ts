import type { Address, Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import { assertAddress, assertBytes32 } from '../validate.ts';

/**
 * 0 when the node may work now (Active, TEE type allowed, measurement allow-listed), else the
 * reason of REGISTRY_INELIGIBLE_REASONS (1 not Active, 2 TEE type not allowed, 3 measurement revoked).
 */
export async function getIneligibility(clients: FirnClients, enclaveId: Hex): Promise<number> {
  try {
    return await clients.public.readContract({
      address: clients.addresses.registry,
      abi: firnRegistryAbi,
      functionName: 'ineligibility',
      args: [assertBytes32(enclaveId, 'enclaveId')],
    });
  } catch (e) {
    throw toChainError(e, 'ineligibility');
  }
}

/**
 * The governance restriction on the code a node runs, whatever its status (decision 1726): 2 when
 * its TEE type is no longer allowed, 3 when its measurement is revoked, else 0 (also for an unknown
 * Enclave ID). Unlike `getIneligibility`, an exit or a slash does not hide it.
 * @throws FirnError (chain) when the read fails; an `enclaveId` that is not 32 bytes of hex is refused first.
 */
export async function getRestriction(clients: FirnClients, enclaveId: Hex): Promise<number> {
  try {
    return await clients.public.readContract({
      address: clients.addresses.registry,
      abi: firnRegistryAbi,
      functionName: 'restriction',
      args: [assertBytes32(enclaveId, 'enclaveId')],
    });
  } catch (e) {
    throw toChainError(e, 'restriction');
  }
}

/** One entry of an Enclave ID's key history (block numbers inclusive; toBlock = 2^64-1 while in force). */
export interface EnclaveKeyRecord {
  enclaveAddress: Address;
  fromBlock: bigint;
  toBlock: bigint;
}

/** Every approved enclave key of `enclaveId` with the blocks it was in force, oldest first. */
export async function getEnclaveKeyHistory(
  clients: FirnClients,
  enclaveId: Hex,
): Promise<EnclaveKeyRecord[]> {
  try {
    const r = await clients.public.readContract({
      address: clients.addresses.registry,
      abi: firnRegistryAbi,
      functionName: 'enclaveKeyHistory',
      args: [assertBytes32(enclaveId, 'enclaveId')],
    });
    return r.map((x) => ({ enclaveAddress: x.enclaveAddress, fromBlock: x.fromBlock, toBlock: x.toBlock }));
  } catch (e) {
    throw toChainError(e, 'enclaveKeyHistory');
  }
}

/**
 * Whether `account` was the approved enclave key of `enclaveId` at `blockNumber`: how a third party
 * checks a proof or a data record signed before a key rotation or an exit.
 */
export async function wasEnclaveAddress(
  clients: FirnClients,
  p: { enclaveId: Hex; account: Address; blockNumber: bigint },
): Promise<boolean> {
  try {
    return await clients.public.readContract({
      address: clients.addresses.registry,
      abi: firnRegistryAbi,
      functionName: 'wasEnclaveAddress',
      args: [assertBytes32(p.enclaveId, 'enclaveId'), assertAddress(p.account, 'account'), p.blockNumber],
    });
  } catch (e) {
    throw toChainError(e, 'wasEnclaveAddress');
  }
}
