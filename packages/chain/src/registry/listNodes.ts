import { type Hex, toEventSelector } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import { getLogsPaged } from '../getLogsPaged.ts';
import { NodeStatus, type FirnNode } from '../types.ts';
import { getNode } from './getNode.ts';

/** The statuses that can be listed: Active and Exiting from the registry's indexes, Pending from
 * NodeRegistered events (Rejected, Exited and Slashed IDs are in no list). */
export const INDEXED_NODE_STATUSES = [NodeStatus.Pending, NodeStatus.Active, NodeStatus.Exiting] as const;

export interface ListNodesOptions {
  /** Keep only nodes in these indexed states (default: Pending, Active and Exiting). */
  status?: readonly NodeStatus[];
  /** Page size of each `enclaveIdsByStatus` call (default 200). */
  pageSize?: number;
}

const NODE_REGISTERED = toEventSelector(
  firnRegistryAbi.find((x) => x.type === 'event' && x.name === 'NodeRegistered') as Parameters<
    typeof toEventSelector
  >[0],
);

/**
 * Pending registrations are not indexed on chain (decision 1140): the Enclave IDs of NodeRegistered
 * events up to `blockNumber` whose record is Pending at that block.
 */
async function listPendingEnclaveIds(clients: FirnClients, blockNumber?: bigint): Promise<Hex[]> {
  try {
    const logs = await getLogsPaged(
      clients,
      {
        address: clients.addresses.registry,
        topics: [NODE_REGISTERED],
        ...(blockNumber === undefined ? {} : { toBlock: blockNumber }),
      },
      'NodeRegistered',
    );
    const ids = [...new Set(logs.map((l) => l.topics[1]).filter((t): t is Hex => t !== undefined))];
    const statuses = await Promise.all(
      ids.map((id) =>
        clients.public.readContract({
          address: clients.addresses.registry,
          abi: firnRegistryAbi,
          functionName: 'getNode',
          args: [id],
          ...(blockNumber !== undefined ? { blockNumber } : {}),
        }),
      ),
    );
    return ids.filter((_, i) => statuses[i]?.status === NodeStatus.Pending);
  } catch (e) {
    throw toChainError(e, 'NodeRegistered');
  }
}

/**
 * Enclave IDs in one indexed status (Pending: from events), every page of `enclaveIdsByStatus(status, offset, limit)`;
 * all pages read at `blockNumber` when given (default: latest).
 */
export async function listEnclaveIdsByStatus(
  clients: FirnClients,
  status: NodeStatus,
  pageSize = 200,
  blockNumber?: bigint,
): Promise<Hex[]> {
  if (status === NodeStatus.Pending) return listPendingEnclaveIds(clients, blockNumber);
  const base = {
    address: clients.addresses.registry,
    abi: firnRegistryAbi,
    ...(blockNumber !== undefined ? { blockNumber } : {}),
  } as const;
  try {
    const count = await clients.public.readContract({
      ...base,
      functionName: 'countByStatus',
      args: [status],
    });
    const out: Hex[] = [];
    for (let offset = 0n; offset < count; offset += BigInt(pageSize)) {
      const page = await clients.public.readContract({
        ...base,
        functionName: 'enclaveIdsByStatus',
        args: [status, offset, BigInt(pageSize)],
      });
      out.push(...page);
      if (page.length === 0) break;
    }
    return out;
  } catch (e) {
    throw toChainError(e, 'enclaveIdsByStatus');
  }
}

/**
 * Nodes in the registry's status indexes with their current records (order not stable). A status
 * that is not indexed (Rejected, Exited, Slashed) is an InvalidInputError-free empty result: read
 * such a node with getNode by its Enclave ID.
 */
export async function listNodes(clients: FirnClients, opts: ListNodesOptions = {}): Promise<FirnNode[]> {
  const wanted = (opts.status ?? INDEXED_NODE_STATUSES).filter((s) =>
    (INDEXED_NODE_STATUSES as readonly NodeStatus[]).includes(s),
  );
  const ids = (
    await Promise.all(wanted.map((s) => listEnclaveIdsByStatus(clients, s, opts.pageSize)))
  ).flat();
  const nodes = await Promise.all(ids.map((id) => getNode(clients, id)));
  // A node may change status between the index read and getNode: keep what was asked for.
  return nodes.filter((n) => wanted.includes(n.status));
}
