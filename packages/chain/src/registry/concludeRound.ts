import type { Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32, assertUint } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

export interface ConcludeRoundParams {
  /** The node whose open round (registration or key rotation) is re-evaluated. */
  enclaveId: Hex;
  /** The round meant (the record's `round`); another round open on chain reverts RoundMismatch. */
  round: number;
}

/**
 * Anyone: conclude the node's open round against the stake that can still vote in it now, as a
 * vote would (registry `concludeRound`, decision 1755): for a round that passes only because stake
 * left, was deactivated or slashed after its last vote. Throws ChainRevertedError RoundUndecided
 * (neither approvals > 2/3 nor refusals > 1/3 yet), NoOpenRound, RoundMismatch (another round is
 * open: decision 1831), or MeasurementRevokedWhilePending.
 */
export async function concludeRound(clients: FirnClients, p: ConcludeRoundParams): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.registry,
    abi: firnRegistryAbi,
    functionName: 'concludeRound',
    args: [assertBytes32(p.enclaveId, 'enclaveId'), Number(assertUint(p.round, 32, 'round'))],
  });
}
