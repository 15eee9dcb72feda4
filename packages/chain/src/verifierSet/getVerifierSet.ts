import type { Address } from 'viem';
import { firnVerifierSetAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';

export interface VerifierSetState {
  threshold: number;
  verifiers: readonly Address[];
  minVerifierStake: bigint;
  unbondingPeriod: bigint;
}

/** The voting verifiers and the quorum threshold as of the latest block. */
export async function getVerifierSet(clients: FirnClients): Promise<VerifierSetState> {
  const base = { address: clients.addresses.verifierSet, abi: firnVerifierSetAbi } as const;
  try {
    const [threshold, verifiers, minVerifierStake, unbondingPeriod] = await Promise.all([
      clients.public.readContract({ ...base, functionName: 'threshold' }),
      clients.public.readContract({ ...base, functionName: 'verifiers' }),
      clients.public.readContract({ ...base, functionName: 'minVerifierStake' }),
      clients.public.readContract({ ...base, functionName: 'unbondingPeriod' }),
    ]);
    return { threshold, verifiers, minVerifierStake, unbondingPeriod };
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
