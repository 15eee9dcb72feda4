import { InvalidInputError } from '@firn/core';
import type { Address } from 'viem';
import type { FirnClients } from '../clients.ts';

/** The rewards contract of the deployment, or a typed error naming what is missing. */
export function rewardsAddress(clients: FirnClients): Address {
  const a = clients.addresses.rewards;
  if (a === undefined)
    throw new InvalidInputError(
      'this deployment has no rewards contract (deployment file older than issue 9?)',
    );
  return a;
}
