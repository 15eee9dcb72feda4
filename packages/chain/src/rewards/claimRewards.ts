import type { Address, Hex } from 'viem';
import { firnRewardsAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertAddress, assertBytes32, assertUint } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';
import { rewardsAddress } from './rewardsAddress.ts';

/**
 * Anyone, after `epoch` ended: fix its budget (undistributed pool x epochBudgetBps, split between
 * nodes and verifiers). Earlier epochs with points are already closed (the first point of an epoch
 * closes the one worked before it, decision 1821), so the order of closes changes no budget.
 * Idempotent. Reverts EpochNotEnded(epoch, currentEpoch).
 */
export async function closeEpoch(clients: FirnClients, epoch: bigint): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: rewardsAddress(clients),
    abi: firnRewardsAbi,
    functionName: 'closeEpoch',
    args: [assertUint(epoch, 64, 'epoch')],
  });
}

/**
 * Anyone: credit the node's share of an ended epoch to the operator that earned it (pull it with
 * withdrawCredits(clients, 'rewards')). Reverts EpochNotEnded, NothingToClaim(epoch, enclaveId).
 */
export async function claimNodeReward(
  clients: FirnClients,
  p: { epoch: bigint; enclaveId: Hex },
): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: rewardsAddress(clients),
    abi: firnRewardsAbi,
    functionName: 'claimNodeReward',
    args: [assertUint(p.epoch, 64, 'epoch'), assertBytes32(p.enclaveId, 'enclaveId')],
  });
}

/**
 * Anyone: credit a verifier's share of an ended epoch: by work x stake, capped at its share of the
 * active verifier stake (decision 1820; the rest stays in the pool, VerifierRewardWithheld).
 * Reverts EpochNotEnded, NothingToClaim.
 */
export async function claimVerifierReward(
  clients: FirnClients,
  p: { epoch: bigint; verifier: Address },
): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: rewardsAddress(clients),
    abi: firnRewardsAbi,
    functionName: 'claimVerifierReward',
    args: [assertUint(p.epoch, 64, 'epoch'), assertAddress(p.verifier, 'verifier')],
  });
}

/** Add `amount` wei to the reward pool. */
export async function fundRewards(clients: FirnClients, amount: bigint): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: rewardsAddress(clients),
    abi: firnRewardsAbi,
    functionName: 'fund',
    args: [],
    value: amount,
  });
}

/**
 * Anyone (a verifier daemon): drop the current epoch's node points of `enclaveId` after governance
 * restricted its code (measurement revoked: restriction 3; TEE type withdrawn: 2; whatever its
 * status), with the verifier points its answers earned (decision 1708). Its platform's share goes
 * to the platform's eligible co-tenant that answered this epoch; the rest stays void in the epoch's
 * totals, so no other node gains (1726). Reverts NodeNotRevoked(enclaveId, 0), NothingToDrop(epoch, enclaveId).
 */
export async function dropRevokedPoints(clients: FirnClients, enclaveId: Hex): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: rewardsAddress(clients),
    abi: firnRewardsAbi,
    functionName: 'dropRevokedPoints',
    args: [assertBytes32(enclaveId, 'enclaveId')],
  });
}
