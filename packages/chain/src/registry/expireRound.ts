import type { Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32, assertUint } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

export interface ExpireRoundParams {
  /** The node whose open round (registration or key rotation) passed its deadline undecided. */
  enclaveId: Hex;
  /** The round meant (the record's `round`); another round open on chain reverts RoundMismatch. */
  round: number;
}

/**
 * Anyone: end the node's open round once its deadline (`FirnNode.roundEndsAt`) has passed with no
 * decision (registry `expireRound`, decision 1833). A registration becomes Exited: its Enclave ID
 * and enclave address are free at once and its stake is credited to its operator (`withdraw`), the
 * fee kept. A key rotation is dropped: the node stays Active with its old keys and the reserved
 * address is released. Throws ChainRevertedError RoundNotExpired (before the deadline),
 * RoundDecidable (the votes cast decide it: call `concludeRound`), NoOpenRound, or RoundMismatch
 * (another round is open: decision 1831).
 */
export async function expireRound(clients: FirnClients, p: ExpireRoundParams): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.registry,
    abi: firnRegistryAbi,
    functionName: 'expireRound',
    args: [assertBytes32(p.enclaveId, 'enclaveId'), Number(assertUint(p.round, 32, 'round'))],
  });
}
