import type { Address } from 'viem';
import { firnVerifierSetAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';

export interface VerifierSetState {
  /** Active verifiers (unordered). */
  verifiers: readonly Address[];
  /** Sum of the active verifiers' stakes, wei: quorums are fractions of it (snapshotted per round). */
  totalActiveStake: bigint;
  /** Id of the latest snapshot of the active stake. */
  currentSnapshot: bigint;
  minVerifierStake: bigint;
  unbondingPeriod: bigint;
}

/**
 * The active verifiers and their total stake as of the latest block. There is no threshold to
 * read: approval needs > 2/3, refusal > 1/3 of the stake snapshotted when the round opened.
 */
export async function getVerifierSet(clients: FirnClients): Promise<VerifierSetState> {
  const base = { address: clients.addresses.verifierSet, abi: firnVerifierSetAbi } as const;
  try {
    const [verifiers, totalActiveStake, currentSnapshot, minVerifierStake, unbondingPeriod] =
      await Promise.all([
        clients.public.readContract({ ...base, functionName: 'verifiers' }),
        clients.public.readContract({ ...base, functionName: 'totalActiveStake' }),
        clients.public.readContract({ ...base, functionName: 'currentSnapshot' }),
        clients.public.readContract({ ...base, functionName: 'minVerifierStake' }),
        clients.public.readContract({ ...base, functionName: 'unbondingPeriod' }),
      ]);
    return { verifiers, totalActiveStake, currentSnapshot, minVerifierStake, unbondingPeriod };
  } catch (e) {
    throw toChainError(e, 'getVerifierSet');
  }
}

/** Whether `account` may vote now. */
export async function isVerifier(clients: FirnClients, account: Address): Promise<boolean> {
  try {
    return await clients.public.readContract({
      address: clients.addresses.verifierSet,
      abi: firnVerifierSetAbi,
      functionName: 'isVerifier',
      args: [account],
    });
  } catch (e) {
    throw toChainError(e, 'isVerifier');
  }
}
