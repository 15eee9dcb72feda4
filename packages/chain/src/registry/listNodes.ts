import { firnRegistryAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import type { FirnNode, NodeStatus } from '../types.ts';
import { getNode } from './getNode.ts';

export interface ListNodesOptions {
  /** Keep only nodes in one of these states. */
  status?: readonly NodeStatus[];
}

/** Every Enclave ID ever registered, with its current record, in registration order. */
export async function listNodes(clients: FirnClients, opts: ListNodesOptions = {}): Promise<FirnNode[]> {
  let ids: readonly `0x${string}`[];
  try {
    ids = await clients.public.readContract({
      address: clients.addresses.registry,
      abi: firnRegistryAbi,
      functionName: 'enclaveIds',
    });
  } catch (e) {
    throw toChainError(e, 'enclaveIds');
  }
  const nodes = await Promise.all(ids.map((id) => getNode(clients, id)));
  const keep = opts.status;
  return keep === undefined ? nodes : nodes.filter((n) => keep.includes(n.status));
}
