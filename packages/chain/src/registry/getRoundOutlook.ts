import type { Hex } from 'viem';
import { firnRegistryAbi, firnVerifierSetAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import { NodeStatus } from '../types.ts';
import { assertBytes32 } from '../validate.ts';
import { getNode } from './getNode.ts';

/** Whether a node's open round (registration or key rotation) can still be approved, read now. */
export interface RoundOutlook {
  enclaveId: Hex;
  /** The open round's number. */
  round: number;
  /** The verifier-set snapshot the round's votes are weighed at. */
  snapshotId: bigint;
  /** Approval and refusal stake cast so far, wei. */
  approvalStake: bigint;
  refusalStake: bigint;
  /** What the active verifiers that have not voted in the round can still cast there, wei. */
  notVotedStake: bigint;
  /**
   * The least the round's bar is now, wei: the snapshot's total while no reduction followed the
   * snapshot, else the stake active now capped at the snapshot's total (decisions 1758, 1779: a
   * shrunk bar never falls under the first nor rises over the second).
   */
  barAtLeast: bigint;
  /**
   * False when even every vote still possible, cast for approval, stays at or under 2/3 of
   * `barAtLeast`: with the verifier stake active now the round cannot pass. It may again if active
   * stake leaves; the way out is `requestExit` (the stake is credited back) and a new registration.
   */
  canApprove: boolean;
}

/**
 * Read a node's open round and whether approval is still within reach (decisions 1720, 1758, 1779):
 * the approvals cast plus the weight every active verifier that has not voted holds at the
 * round's snapshot, against 2/3 of the least the bar can be now. Undefined when the node has no
 * open round (not Pending, and Active without a pending rotation). Reads the node, the verifier
 * set, and per active verifier its vote weight and whether it voted (2 calls each). Throws
 * ChainRevertedError / E_CHAIN on a failed read.
 *
 * It never reports a round stuck that can pass: `barAtLeast` is a lower bound of the registry's
 * denominator (`quorumStakeAt` may be higher, never lower), and the votes still possible are
 * counted in full.
 */
export async function getRoundOutlook(
  clients: FirnClients,
  enclaveId: Hex,
): Promise<RoundOutlook | undefined> {
  assertBytes32(enclaveId, 'enclaveId');
  const n = await getNode(clients, enclaveId);
  if (n.status !== NodeStatus.Pending && !(n.status === NodeStatus.Active && n.rotationPending))
    return undefined;
  const vs = { address: clients.addresses.verifierSet, abi: firnVerifierSetAbi } as const;
  const reg = { address: clients.addresses.registry, abi: firnRegistryAbi } as const;
  const snap = n.snapshotId;
  try {
    const [members, active, total, lastReduction] = await Promise.all([
      clients.public.readContract({ ...vs, functionName: 'verifiers' }),
      clients.public.readContract({ ...vs, functionName: 'totalActiveStake' }),
      clients.public.readContract({ ...vs, functionName: 'totalStakeAt', args: [snap] }),
      clients.public.readContract({ ...vs, functionName: 'lastReduction' }),
    ]);
    const weights = await Promise.all(
      members.map(async (m) => {
        const [voted, weight] = await Promise.all([
          clients.public.readContract({ ...reg, functionName: 'hasVoted', args: [enclaveId, n.round, m] }),
          clients.public.readContract({ ...vs, functionName: 'voteWeight', args: [m, snap] }),
        ]);
        return voted ? 0n : weight;
      }),
    );
    const notVotedStake = weights.reduce((a, b) => a + b, 0n);
    const barAtLeast = BigInt(lastReduction) <= snap || active > total ? total : active;
    return {
      enclaveId,
      round: n.round,
      snapshotId: snap,
      approvalStake: n.approvalStake,
      refusalStake: n.refusalStake,
      notVotedStake,
      barAtLeast,
      canApprove: (n.approvalStake + notVotedStake) * 3n > barAtLeast * 2n,
    };
  } catch (e) {
    throw toChainError(e, 'getRoundOutlook');
  }
}
