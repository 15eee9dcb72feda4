import { FirnError } from '@firn/core';
import { type Address, type Hex, parseEventLogs } from 'viem';
import { firnRewardsAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32 } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';
import { rewardsAddress } from './rewardsAddress.ts';

/** A liveness challenge as stored (IFirnRewards.Challenge) plus its id. */
export interface LivenessChallenge {
  challengeId: Hex;
  enclaveId: Hex;
  verifier: Address;
  epoch: bigint;
  /** Unix seconds (chain time); an answer after it is refused (ChallengeExpired). */
  deadline: bigint;
  answered: boolean;
  nonce: Hex;
}

/**
 * Verifier: challenge an eligible node (once per node per verifier per epoch). The contract picks
 * the nonce from chain state; returns it with the challenge. Reverts NotVerifier,
 * NodeNotEligible(enclaveId, reason), AlreadyChallenged(epoch, verifier, enclaveId),
 * NodeOnProbation(enclaveId, missed) (a node that never answered or missed its last challenged
 * epoch takes one challenge per epoch), NodeUnresponsive(enclaveId, missed) (none after
 * MAX_MISSED_EPOCHS missed epochs until its operator calls resumeChallenges; decision 1576).
 * Read the pool's `isUnresponsive(enclaveId)` first to skip such a node without paying gas.
 */
export async function issueChallenge(
  clients: FirnClients,
  enclaveId: Hex,
): Promise<WriteResult & { challenge: LivenessChallenge }> {
  const res = await writeContractAndWait(clients, {
    address: rewardsAddress(clients),
    abi: firnRewardsAbi,
    functionName: 'issueChallenge',
    args: [assertBytes32(enclaveId, 'enclaveId')],
  });
  const [ev] = parseEventLogs({ abi: firnRewardsAbi, eventName: 'ChallengeIssued', logs: res.receipt.logs });
  if (!ev) throw new FirnError('E_CHAIN', 'issueChallenge: no ChallengeIssued event in the receipt');
  const a = ev.args;
  return {
    ...res,
    challenge: {
      challengeId: a.challengeId,
      enclaveId: a.enclaveId,
      verifier: a.verifier,
      epoch: a.epoch,
      deadline: a.deadline,
      answered: false,
      nonce: a.nonce,
    },
  };
}

/** Read one challenge; an unknown id comes back with a zero Enclave ID. */
export async function getChallenge(clients: FirnClients, challengeId: Hex): Promise<LivenessChallenge> {
  try {
    const c = await clients.public.readContract({
      address: rewardsAddress(clients),
      abi: firnRewardsAbi,
      functionName: 'getChallenge',
      args: [assertBytes32(challengeId, 'challengeId')],
    });
    return { challengeId, ...c };
  } catch (e) {
    throw toChainError(e, 'getChallenge');
  }
}

/** ChallengeIssued events in [fromBlock, toBlock], optionally for one Enclave ID, in chain order. */
export async function getIssuedChallenges(
  clients: FirnClients,
  p: { fromBlock: bigint; toBlock: bigint; enclaveId?: Hex },
): Promise<(LivenessChallenge & { blockNumber: bigint })[]> {
  try {
    const logs = await clients.public.getContractEvents({
      address: rewardsAddress(clients),
      abi: firnRewardsAbi,
      eventName: 'ChallengeIssued',
      fromBlock: p.fromBlock,
      toBlock: p.toBlock,
      ...(p.enclaveId === undefined ? {} : { args: { enclaveId: assertBytes32(p.enclaveId, 'enclaveId') } }),
      strict: true,
    });
    return logs.map((l) => ({ ...l.args, answered: false, blockNumber: l.blockNumber }));
  } catch (e) {
    throw toChainError(e, 'getIssuedChallenges');
  }
}
