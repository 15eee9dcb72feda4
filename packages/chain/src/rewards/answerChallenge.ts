import { InvalidInputError } from '@firn/core';
import type { Hex } from 'viem';
import { firnRewardsAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32 } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';
import { rewardsAddress } from './rewardsAddress.ts';

/**
 * Anyone (the node's host): relay the enclave's 65-byte signature over LivenessAnswer{challengeId,
 * nonce, enclaveId, epoch} (core's livenessAnswerDigest). Reverts UnknownChallenge,
 * AlreadyAnswered, ChallengeExpired (past the deadline), StaleChallenge (another epoch),
 * WrongSigner (not the registered enclave key, e.g. an answer the host made), NodeNotEligible.
 * An answer of a second Enclave ID of a platform already counted this epoch is accepted with no points.
 */
export async function answerChallenge(
  clients: FirnClients,
  p: { challengeId: Hex; signature: Hex },
): Promise<WriteResult> {
  if (!/^0x[0-9a-fA-F]{130}$/.test(p.signature))
    throw new InvalidInputError('signature must be 65 bytes of 0x hex');
  return writeContractAndWait(clients, {
    address: rewardsAddress(clients),
    abi: firnRewardsAbi,
    functionName: 'answerChallenge',
    args: [assertBytes32(p.challengeId, 'challengeId'), p.signature],
  });
}
