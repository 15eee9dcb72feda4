import type { Hex } from 'viem';
import { firnRegistryAbi, firnRewardsAbi, firnVerifierSetAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32 } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';
import { rewardsAddress } from './rewardsAddress.ts';

/**
 * What resuming one unresponsive node costs (decisions 1576, 1591), read at one block.
 * `fee` is the pool's `resumeFee(enclaveId)` at that block's base fee; the other fields let a
 * caller re-price it for a later block's base fee: fee = max(registrationFee, maxMissedEpochs x
 * max((t x challengeGas + (V - t) x refusedChallengeGas) x baseFee, peakChallengeCost)), V =
 * max(verifierCount, 1), t = min(livenessTarget, V) (decisions 1594, 1645, 1695). All of it is
 * credited to the owner's treasury, not the reward pool (decision 1646).
 */
export interface ResumeFeeQuote {
  /** Wei the pool asks at `baseFee`. */
  fee: bigint;
  /** Wei: the registry's registrationFee, the floor of the fee. */
  registrationFee: bigint;
  /** MAX_MISSED_EPOCHS: challenges a resumed node that stays silent can cost the verifiers. */
  maxMissedEpochs: number;
  /** CHALLENGE_GAS: gas of one issueChallenge transaction, at most. */
  challengeGas: bigint;
  /** REFUSED_CHALLENGE_GAS: gas of one refused issueChallenge transaction, at most. */
  refusedChallengeGas: bigint;
  /** Active verifiers (FirnVerifierSet.verifierCount) at the block read: the daemons that race. */
  verifierCount: bigint;
  /**
   * The pool's livenessTarget at the block read: at most this many challenges per node and epoch
   * are accepted (decision 1695), the other daemons' are refused.
   */
  livenessTarget: number;
  /**
   * Wei: the dearest epoch the node missed since its last resume cost the verifiers, recorded at
   * their accepted challenges (FirnRewards.peakChallengeCost, decisions 1645, 1695); the fee is
   * never priced below it, whatever the base fee of the block the resume lands in.
   */
  peakChallengeCost: bigint;
  /** Wei per gas of the block read (0 on a chain without EIP-1559). */
  baseFee: bigint;
}

/**
 * The resume fee at `baseFee` wei per gas: max(registrationFee, maxMissedEpochs x
 * max((t x challengeGas + (V - t) x refusedChallengeGas) x baseFee, peakChallengeCost)), V =
 * max(verifierCount, 1), t = min(livenessTarget, V): what `resumeChallenges` requires in a block
 * with that base fee, verifier count and target (FirnRewards._resumeFee, decisions 1591, 1594,
 * 1645, 1695).
 */
export function resumeFeeAt(q: Omit<ResumeFeeQuote, 'fee' | 'baseFee'>, baseFee: bigint): bigint {
  const verifiers = q.verifierCount > 0n ? q.verifierCount : 1n;
  const target = BigInt(q.livenessTarget);
  const accepted = target < verifiers ? target : verifiers;
  let epochCost = (accepted * q.challengeGas + (verifiers - accepted) * q.refusedChallengeGas) * baseFee;
  if (q.peakChallengeCost > epochCost) epochCost = q.peakChallengeCost;
  const gasCost = BigInt(q.maxMissedEpochs) * epochCost;
  return gasCost > q.registrationFee ? gasCost : q.registrationFee;
}

/**
 * Read the resume fee of node `enclaveId` (bytes32 hex) and its parts at the latest block.
 * Computed from the registry's fee, the pool's constants, the node's recorded peak and the block's
 * base fee (an eth_call may run with a base fee of 0, so the view itself is not read). Throws
 * FirnError E_INVALID_INPUT for a malformed enclaveId, E_CHAIN on an RPC failure.
 */
export async function getResumeFee(clients: FirnClients, enclaveId: Hex): Promise<ResumeFeeQuote> {
  const id = assertBytes32(enclaveId, 'enclaveId');
  try {
    const base = { address: rewardsAddress(clients), abi: firnRewardsAbi } as const;
    const [maxMissedEpochs, challengeGas, refusedChallengeGas, block] = await Promise.all([
      clients.public.readContract({ ...base, functionName: 'MAX_MISSED_EPOCHS' }),
      clients.public.readContract({ ...base, functionName: 'CHALLENGE_GAS' }),
      clients.public.readContract({ ...base, functionName: 'REFUSED_CHALLENGE_GAS' }),
      clients.public.getBlock({ blockTag: 'latest' }),
    ]);
    const [registrationFee, verifierCount, peakChallengeCost, livenessTarget] = await Promise.all([
      clients.public.readContract({
        address: clients.addresses.registry,
        abi: firnRegistryAbi,
        functionName: 'registrationFee',
        blockNumber: block.number,
      }),
      clients.public.readContract({
        address: clients.addresses.verifierSet,
        abi: firnVerifierSetAbi,
        functionName: 'verifierCount',
        blockNumber: block.number,
      }),
      clients.public.readContract({
        ...base,
        functionName: 'peakChallengeCost',
        args: [id],
        blockNumber: block.number,
      }),
      clients.public.readContract({ ...base, functionName: 'livenessTarget', blockNumber: block.number }),
    ]);
    const parts = {
      registrationFee,
      maxMissedEpochs: Number(maxMissedEpochs),
      challengeGas,
      refusedChallengeGas,
      verifierCount,
      livenessTarget: Number(livenessTarget),
      peakChallengeCost,
    };
    const baseFee = block.baseFeePerGas ?? 0n;
    return { ...parts, baseFee, fee: resumeFeeAt(parts, baseFee) };
  } catch (e) {
    throw toChainError(e, 'getResumeFee');
  }
}

/**
 * The node's operator: have an unresponsive node challenged again by paying `value` wei (at least
 * `resumeFee(enclaveId)` in the block it lands in; all of it is credited to the owner's treasury,
 * none to the reward pool: decision 1646). Reverts NotNodeOperator,
 * NodeNotUnresponsive(enclaveId, missed), ResumeFeeTooLow(sent, fee).
 */
export async function resumeChallenges(
  clients: FirnClients,
  p: { enclaveId: Hex; value: bigint },
): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: rewardsAddress(clients),
    abi: firnRewardsAbi,
    functionName: 'resumeChallenges',
    args: [assertBytes32(p.enclaveId, 'enclaveId')],
    value: p.value,
  });
}
