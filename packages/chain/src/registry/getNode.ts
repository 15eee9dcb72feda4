import { type Address, decodeEventLog, type Hex, toEventSelector } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import { getLogsBackTo } from '../getLogsPaged.ts';
import type { FirnNode, NodeStatus } from '../types.ts';
import { assertBytes32 } from '../validate.ts';

/**
 * Read one node; an unknown Enclave ID comes back with status None and zero fields.
 * `opts.blockNumber` reads it as of that block (default: latest). The registry does not store the
 * KEM public key and the endpoint (decision 1140): they come from the node's latest NodeRegistered,
 * KeysRotated or EndpointUpdated event up to that block, in one log query.
 */
export async function getNode(
  clients: FirnClients,
  enclaveId: Hex,
  opts: { blockNumber?: bigint } = {},
): Promise<FirnNode> {
  assertBytes32(enclaveId, 'enclaveId');
  try {
    const [n, published] = await Promise.all([
      clients.public.readContract({
        address: clients.addresses.registry,
        abi: firnRegistryAbi,
        functionName: 'getNode',
        args: [enclaveId],
        ...(opts.blockNumber !== undefined ? { blockNumber: opts.blockNumber } : {}),
      }),
      readPublished(clients, enclaveId, opts.blockNumber),
    ]);
    return {
      enclaveId,
      operator: n.operator,
      teeType: n.teeType,
      status: n.status as NodeStatus,
      rotationPending: n.rotationPending,
      round: n.round,
      unbondingEndsAt: BigInt(n.unbondingEndsAt),
      lockedUntil: BigInt(n.lockedUntil),
      snapshotId: BigInt(n.snapshotId),
      measurement: n.measurement,
      platformIdHash: n.platformIdHash,
      enclaveAddress: n.enclaveAddress,
      kemPublicKey: published.kemPublicKey,
      endpoint: published.endpoint,
      evidenceDigest: n.evidenceDigest,
      stake: n.stake,
      approvalStake: n.approvalStake,
      refusalStake: n.refusalStake,
      pendingEnclaveAddress: n.pendingEnclaveAddress,
      pendingKemPublicKey: n.pendingKemPublicKey,
      pendingEvidenceDigest: n.pendingEvidenceDigest,
    };
  } catch (e) {
    throw toChainError(e, 'getNode');
  }
}

const PUBLISHING_EVENTS = ['NodeRegistered', 'KeysRotated', 'EndpointUpdated'] as const;
const PUBLISHING_TOPICS = PUBLISHING_EVENTS.map((name) => {
  const item = firnRegistryAbi.find((x) => x.type === 'event' && x.name === name);
  if (!item) throw new Error(`ABI has no ${name} event`);
  return toEventSelector(item as Parameters<typeof toEventSelector>[0]);
});

/** The latest KEM key and endpoint a node published in events, up to `blockNumber`. */
async function readPublished(
  clients: FirnClients,
  enclaveId: Hex,
  blockNumber: bigint | undefined,
): Promise<{ kemPublicKey: Hex; endpoint: string }> {
  // NodeRegistered sets both fields, so nothing before the latest one matters: read back to it.
  const logs = await getLogsBackTo(
    clients,
    {
      address: clients.addresses.registry,
      topics: [PUBLISHING_TOPICS, enclaveId],
      ...(blockNumber === undefined ? {} : { toBlock: blockNumber }),
    },
    (l) => l.topics[0] === PUBLISHING_TOPICS[0],
    'getNode',
  );
  let kemPublicKey: Hex = `0x${'0'.repeat(64)}`;
  let endpoint = '';
  // Logs come in chain order: the last of each kind is in force.
  for (const log of logs) {
    const ev = decodeEventLog({
      abi: firnRegistryAbi,
      topics: log.topics as [Hex, ...Hex[]],
      data: log.data,
    });
    if (ev.eventName === 'NodeRegistered') {
      kemPublicKey = ev.args.kemPublicKey;
      endpoint = ev.args.endpoint;
    } else if (ev.eventName === 'KeysRotated') {
      kemPublicKey = ev.args.kemPublicKey;
    } else if (ev.eventName === 'EndpointUpdated') {
      endpoint = ev.args.endpoint;
    }
  }
  return { kemPublicKey, endpoint };
}

/** The Enclave ID an enclave address is registered under, or undefined. */
export async function getEnclaveIdOf(
  clients: FirnClients,
  enclaveAddress: Address,
): Promise<Hex | undefined> {
  try {
    const id = await clients.public.readContract({
      address: clients.addresses.registry,
      abi: firnRegistryAbi,
      functionName: 'enclaveIdOf',
      args: [enclaveAddress],
    });
    return /^0x0{64}$/.test(id) ? undefined : id;
  } catch (e) {
    throw toChainError(e, 'enclaveIdOf');
  }
}
