import type { Address, Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import type { FirnNode, NodeStatus } from '../types.ts';
import { assertBytes32 } from '../validate.ts';

/**
 * Read one node; an unknown Enclave ID comes back with status None and zero fields.
 * `opts.blockNumber` reads it as of that block (default: latest).
 */
export async function getNode(
  clients: FirnClients,
  enclaveId: Hex,
  opts: { blockNumber?: bigint } = {},
): Promise<FirnNode> {
  assertBytes32(enclaveId, 'enclaveId');
  try {
    const n = await clients.public.readContract({
      address: clients.addresses.registry,
      abi: firnRegistryAbi,
      functionName: 'getNode',
      args: [enclaveId],
      ...(opts.blockNumber !== undefined ? { blockNumber: opts.blockNumber } : {}),
    });
    return {
      enclaveId,
      operator: n.operator,
      teeType: n.teeType,
      status: n.status as NodeStatus,
      rotationPending: n.rotationPending,
      round: n.round,
      registeredAt: n.registeredAt,
      unbondingEndsAt: n.unbondingEndsAt,
      lockedUntil: n.lockedUntil,
      snapshotId: n.snapshotId,
      measurement: n.measurement,
      platformIdHash: n.platformIdHash,
      enclaveAddress: n.enclaveAddress,
      kemPublicKey: n.kemPublicKey,
      endpoint: n.endpoint,
      evidenceDigest: n.evidenceDigest,
      stake: n.stake,
      approvalStake: n.approvalStake,
      refusalStake: n.refusalStake,
      pendingEnclaveAddress: n.pendingEnclaveAddress,
      pendingKemPublicKey: n.pendingKemPublicKey,
      pendingEvidenceDigest: n.pendingEvidenceDigest,
    };
  } catch (e) {
    throw toChainError(e, 'getNode');
  }
}

/** The Enclave ID an enclave address is registered under, or undefined. */
export async function getEnclaveIdOf(
  clients: FirnClients,
  enclaveAddress: Address,
): Promise<Hex | undefined> {
  try {
    const id = await clients.public.readContract({
      address: clients.addresses.registry,
      abi: firnRegistryAbi,
      functionName: 'enclaveIdOf',
      args: [enclaveAddress],
    });
    return /^0x0{64}$/.test(id) ? undefined : id;
  } catch (e) {
    throw toChainError(e, 'enclaveIdOf');
  }
}
