import type { Address, Hex } from 'viem';
import { firnRewardsAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import { assertAddress, assertBytes32, assertUint } from '../validate.ts';
import { rewardsAddress } from './rewardsAddress.ts';

/** The pool's clock, parameters and totals (wei). Invariant: withdrawn <= allocated <= received. */
export interface RewardsState {
  currentEpoch: bigint;
  /** Seconds. */
  epochLength: bigint;
  /** Unix seconds of epoch 0's start. */
  genesis: bigint;
  /** Seconds a node has to answer a challenge. */
  answerWindow: bigint;
  livenessTarget: number;
  epochBudgetBps: number;
  verifierShareBps: number;
  totalReceived: bigint;
  totalAllocated: bigint;
  totalWithdrawn: bigint;
}

/** Read the pool's clock, parameters and totals. */
export async function getRewardsState(clients: FirnClients): Promise<RewardsState> {
  const base = { address: rewardsAddress(clients), abi: firnRewardsAbi } as const;
  const r = clients.public;
  try {
    const [
      currentEpoch,
      epochLength,
      genesis,
      answerWindow,
      livenessTarget,
      epochBudgetBps,
      verifierShareBps,
      totalReceived,
      totalAllocated,
      totalWithdrawn,
    ] = await Promise.all([
      r.readContract({ ...base, functionName: 'currentEpoch' }),
      r.readContract({ ...base, functionName: 'epochLength' }),
      r.readContract({ ...base, functionName: 'genesis' }),
      r.readContract({ ...base, functionName: 'answerWindow' }),
      r.readContract({ ...base, functionName: 'livenessTarget' }),
      r.readContract({ ...base, functionName: 'epochBudgetBps' }),
      r.readContract({ ...base, functionName: 'verifierShareBps' }),
      r.readContract({ ...base, functionName: 'totalReceived' }),
      r.readContract({ ...base, functionName: 'totalAllocated' }),
      r.readContract({ ...base, functionName: 'totalWithdrawn' }),
    ]);
    return {
      currentEpoch,
      epochLength,
      genesis,
      answerWindow,
      livenessTarget,
      epochBudgetBps,
      verifierShareBps,
      totalReceived,
      totalAllocated,
      totalWithdrawn,
    };
  } catch (e) {
    throw toChainError(e, 'getRewardsState');
  }
}

/** One node's record in one epoch: answers counted, points, and what a claim would credit now. */
export interface NodeEpochReward {
  epoch: bigint;
  enclaveId: Hex;
  answers: number;
  points: bigint;
  /** Wei claimNodeReward would credit now (0 before the epoch ended or once claimed). */
  pending: bigint;
}

export async function getNodeEpochReward(
  clients: FirnClients,
  p: { epoch: bigint; enclaveId: Hex },
): Promise<NodeEpochReward> {
  const base = { address: rewardsAddress(clients), abi: firnRewardsAbi } as const;
  const args = [assertUint(p.epoch, 64, 'epoch'), assertBytes32(p.enclaveId, 'enclaveId')] as const;
  try {
    const [answers, points, pending] = await Promise.all([
      clients.public.readContract({ ...base, functionName: 'nodeAnswers', args }),
      clients.public.readContract({ ...base, functionName: 'nodePoints', args }),
      clients.public.readContract({ ...base, functionName: 'pendingNodeReward', args }),
    ]);
    return { epoch: p.epoch, enclaveId: p.enclaveId, answers, points, pending };
  } catch (e) {
    throw toChainError(e, 'getNodeEpochReward');
  }
}

export interface VerifierEpochReward {
  epoch: bigint;
  verifier: Address;
  /** Work x the verifier's active stake when it was recorded (wei-weighted; decision 1575). */
  points: bigint;
  pending: bigint;
}

export async function getVerifierEpochReward(
  clients: FirnClients,
  p: { epoch: bigint; verifier: Address },
): Promise<VerifierEpochReward> {
  const base = { address: rewardsAddress(clients), abi: firnRewardsAbi } as const;
  const args = [assertUint(p.epoch, 64, 'epoch'), assertAddress(p.verifier, 'verifier')] as const;
  try {
    const [points, pending] = await Promise.all([
      clients.public.readContract({ ...base, functionName: 'verifierPoints', args }),
      clients.public.readContract({ ...base, functionName: 'pendingVerifierReward', args }),
    ]);
    return { epoch: p.epoch, verifier: p.verifier, points, pending };
  } catch (e) {
    throw toChainError(e, 'getVerifierEpochReward');
  }
}
