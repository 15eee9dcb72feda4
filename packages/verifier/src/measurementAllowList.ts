import type { FirnClients } from '@firn/chain';
import { firnRegistryAbi, toChainError } from '@firn/chain';
import type { Hex } from '@firn/core';
import { refusalCodeOf } from '@firn/core';

/** Whether a registration's measurement is allow-listed, read at one block with the node record. */
export interface AllowListCheck {
  allowed: boolean;
  blockNumber: bigint;
  /** E_MEASUREMENT_NOT_ALLOWED's refusal code, for refuseNode. */
  reasonCode: number;
  message: string;
}

/**
 * Read the registry's allow-list entry for `measurement` at `blockNumber` (the block the verifier
 * read the node at), so a measurement revoked while the registration was pending is refused
 * with E_MEASUREMENT_NOT_ALLOWED before any evidence is fetched. It proves what the verifier's
 * RPC endpoint answered at that block; the verifier trusts its own endpoint.
 */
export async function checkMeasurementAllowed(
  clients: FirnClients,
  node: { teeType: number; measurement: Hex },
  blockNumber: bigint,
): Promise<AllowListCheck> {
  let allowed: boolean;
  try {
    allowed = await clients.public.readContract({
      address: clients.addresses.registry,
      abi: firnRegistryAbi,
      functionName: 'isMeasurementAllowed',
      args: [node.teeType, node.measurement],
      blockNumber,
    });
  } catch (e) {
    throw toChainError(e, 'isMeasurementAllowed');
  }
  return {
    allowed,
    blockNumber,
    reasonCode: refusalCodeOf('E_MEASUREMENT_NOT_ALLOWED'),
    message: allowed
      ? 'measurement is allow-listed'
      : `measurement ${node.measurement.toLowerCase()} is not allow-listed at block ${blockNumber}`,
  };
}
