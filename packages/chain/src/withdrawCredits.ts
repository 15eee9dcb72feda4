import type { Address } from 'viem';
import { firnJobMarketAbi, firnRegistryAbi, firnRewardsAbi } from './abi/generated.ts';
import { toChainError } from './ChainRevertedError.ts';
import { type FirnClients, requireWallet } from './clients.ts';
import { InvalidInputError } from '@firn/core';
import { type WriteResult, writeContractAndWait } from './writeContractAndWait.ts';

/**
 * The firn contracts that hold credited balances, paid by `withdraw()` (pull payments, so no
 * contract that rejects ether can freeze anyone else's money): registry refunds of refused or
 * withdrawn registrations, job market payouts, bonds and refunds, reward pool claims.
 */
export type CreditSource = 'registry' | 'jobMarket' | 'rewards';

function target(clients: FirnClients, source: CreditSource) {
  if (source === 'registry') return { address: clients.addresses.registry, abi: firnRegistryAbi } as const;
  if (source === 'jobMarket') return { address: clients.addresses.jobMarket, abi: firnJobMarketAbi } as const;
  const rewards = clients.addresses.rewards;
  if (rewards === undefined) throw new InvalidInputError('this deployment has no rewards contract');
  return { address: rewards, abi: firnRewardsAbi } as const;
}

/** Wei that `account` may withdraw from `source` now. */
export async function getWithdrawable(
  clients: FirnClients,
  source: CreditSource,
  account: Address,
): Promise<bigint> {
  const t = target(clients, source);
  try {
    return (await clients.public.readContract({
      address: t.address,
      abi: t.abi as typeof firnRegistryAbi,
      functionName: 'withdrawable',
      args: [account],
    })) as bigint;
  } catch (e) {
    throw toChainError(e, `${source}.withdrawable`);
  }
}

/** Pay the sender's credited balance at `source` (reverts NothingToWithdraw when it is 0). */
export async function withdrawCredits(clients: FirnClients, source: CreditSource): Promise<WriteResult> {
  const t = target(clients, source);
  return writeContractAndWait(clients, {
    address: t.address,
    abi: t.abi,
    functionName: 'withdraw',
    args: [],
  });
}

/**
 * Withdraw every non-zero balance the sender has at the registry, the job market and the rewards
 * contract; returns the wei withdrawn from each. Works while the contracts are paused.
 */
export async function withdrawAllCredits(clients: FirnClients): Promise<Record<CreditSource, bigint>> {
  const me = requireWallet(clients).account.address;
  const out: Record<CreditSource, bigint> = { registry: 0n, jobMarket: 0n, rewards: 0n };
  const sources: CreditSource[] = ['registry', 'jobMarket'];
  if (clients.addresses.rewards !== undefined) sources.push('rewards');
  for (const s of sources) {
    const amount = await getWithdrawable(clients, s, me);
    if (amount === 0n) continue;
    await withdrawCredits(clients, s);
    out[s] = amount;
  }
  return out;
}
