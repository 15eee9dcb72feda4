import type { Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32, assertUint } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

export interface ApproveNodeParams {
  enclaveId: Hex;
  /**
   * The round the verifier judged: the record's `round` at the block it read the keys it checked
   * the evidence against (getRoundClaim). Another round open on chain reverts RoundMismatch.
   */
  round: number;
  /** The evidence digest of that round; must equal the round's digest on chain. */
  evidenceDigest: Hex;
}

/**
 * Cast this verifier's approval for the node's open round (registration or key rotation), naming
 * the round (decision 1831). Throws ChainRevertedError RoundMismatch when the registration was
 * made again or the keys rotated since the round was read, NoOpenRound when it closed.
 */
export async function approveNode(clients: FirnClients, p: ApproveNodeParams): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.registry,
    abi: firnRegistryAbi,
    functionName: 'approve',
    args: [
      assertBytes32(p.enclaveId, 'enclaveId'),
      Number(assertUint(p.round, 32, 'round')),
      assertBytes32(p.evidenceDigest, 'evidenceDigest'),
    ],
  });
}
