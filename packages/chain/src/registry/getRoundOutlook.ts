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
   * The round's bar now, wei, as the registry computes it: the snapshot's total while no reduction
   * followed the snapshot, else `quorumStakeAt` (decisions 1758, 1779, 1783: never under the stake
   * joined and active now plus departed voters' weight, never over the snapshot's total).
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
 * Read a node's open round and whether approval is still within reach (decisions 1720, 1758, 1779, 1783):
 * the approvals cast plus the weight every active verifier that has not voted holds at the
 * round's snapshot, against 2/3 of the bar now. Undefined when the node has no
 * open round (not Pending, and Active without a pending rotation). Reads the node, the verifier
 * set, per active verifier its vote weight and whether it voted (2 calls each), and the
 * denominator (`quorumStakeAt`) after a reduction. Throws
 * ChainRevertedError / E_CHAIN on a failed read.
 *
 * It never reports a round stuck that can pass: `barAtLeast` is the registry's denominator as
 * it is now (it moves with leaves and joins), and the votes still possible are
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
    const [members, total, lastReduction] = await Promise.all([
      clients.public.readContract({ ...vs, functionName: 'verifiers' }),
      clients.public.readContract({ ...vs, functionName: 'totalStakeAt', args: [snap] }),
      clients.public.readContract({ ...vs, functionName: 'lastReduction' }),
    ]);
    const ballots = await Promise.all(
      members.map(async (m) => {
        const [voted, weight] = await Promise.all([
          clients.public.readContract({ ...reg, functionName: 'hasVoted', args: [enclaveId, n.round, m] }),
          clients.public.readContract({ ...vs, functionName: 'voteWeight', args: [m, snap] }),
        ]);
        return { m, voted, weight };
      }),
    );
    const notVotedStake = ballots.reduce((a, b) => a + (b.voted ? 0n : b.weight), 0n);
    // The registry's own denominator: voters that left since hold no weight now, so the members
    // that voted are all `quorumStakeAt` needs besides the votes cast.
    const voters = ballots.filter((b) => b.voted).map((b) => b.m);
    const barAtLeast =
      BigInt(lastReduction) <= snap
        ? total
        : await clients.public.readContract({
            ...vs,
            functionName: 'quorumStakeAt',
            args: [snap, voters, n.approvalStake + n.refusalStake],
          });
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
