import type { Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32, assertUint } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

export interface RefuseNodeParams {
  enclaveId: Hex;
  /** The round the verifier judged (see ApproveNodeParams.round). */
  round: number;
  evidenceDigest: Hex;
  /** A uint16 reason, e.g. a verifier refusal code. */
  reasonCode: number;
}

/**
 * Cast this verifier's refusal for the node's open round (registration or key rotation), naming
 * the round (decision 1831): a refusal never counts against a later round. Throws as approveNode.
 */
export async function refuseNode(clients: FirnClients, p: RefuseNodeParams): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.registry,
    abi: firnRegistryAbi,
    functionName: 'refuse',
    args: [
      assertBytes32(p.enclaveId, 'enclaveId'),
      Number(assertUint(p.round, 32, 'round')),
      assertBytes32(p.evidenceDigest, 'evidenceDigest'),
      Number(assertUint(p.reasonCode, 16, 'reasonCode')),
    ],
  });
}
