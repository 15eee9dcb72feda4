import { type Address, decodeEventLog, type Hex, toEventSelector } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import { getLogsBackTo, getLogsPaged, type RawLog } from '../getLogsPaged.ts';
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

/** What a node published in events (NodeRegistered, KeysRotated, EndpointUpdated), as of a block. */
interface Published {
  kemPublicKey: Hex;
  endpoint: string;
}

/**
 * Blocks behind the head that the published-values index keeps out of its cache: a reorganisation
 * shallower than this never leaves a cached value wrong (the tail is read again on every call).
 */
export const PUBLISHED_INDEX_CONFIRMATIONS = 64n;
/** Nodes the index remembers per process (least recently read dropped first). */
const PUBLISHED_INDEX_MAX = 4096;

/**
 * Per process: for each (RPC endpoint, chain, registry, Enclave ID), the values a node had
 * published as of block `at`, complete (read back to its latest NodeRegistered, or to the
 * deployment block). A later read then asks only for the logs after `at`: getNode costs the
 * blocks since the last read, not the blocks since the node registered (about 1 ms of anvil's
 * time per 1,000 blocks). Keyed by the RPC URL so that reads through several endpoints
 * (AgreeingChainView) stay independent: one endpoint's answer is never served for another's. An
 * entry holds the hash of block `at` and is used only while that block still has it: a deeper
 * reorganisation, or another chain behind the same URL (a devnet restarted with the same
 * deployer, hence the same addresses and Enclave IDs), drops it and the read starts over.
 */
const publishedIndex = new Map<string, Published & { at: bigint; hash: Hex }>();

/** The hash of block `n` (undefined when the chain has no such block). */
async function blockHashAt(clients: FirnClients, n: bigint): Promise<Hex | undefined> {
  const b = (await clients.public.request({
    method: 'eth_getBlockByNumber',
    params: [`0x${n.toString(16)}`, false],
  })) as { hash?: Hex } | null;
  return b?.hash ?? undefined;
}

/** The index key of `enclaveId` through `clients`, or undefined when the transport has no URL. */
function indexKey(clients: FirnClients, enclaveId: Hex): string | undefined {
  const t = clients.public.transport;
  const url = 'url' in t && typeof t.url === 'string' ? t.url : undefined;
  if (url === undefined) return undefined;
  return `${url}|${clients.addresses.chainId}|${clients.addresses.registry.toLowerCase()}|${enclaveId.toLowerCase()}`;
}

/** `base` with the publishing events of `logs` (chain order) applied: the last of each kind is in force. */
function applyPublished(base: Published, logs: readonly RawLog[]): Published {
  let { kemPublicKey, endpoint } = base;
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

const NOTHING_PUBLISHED: Published = { kemPublicKey: `0x${'0'.repeat(64)}`, endpoint: '' };

/**
 * The latest KEM key and endpoint a node published in events, up to `blockNumber` (default the
 * latest block). With an index entry at or below that block (an earlier read in this process through
 * the same endpoint), only the logs after it are read; otherwise back to the latest NodeRegistered
 * (getLogsBackTo). The index then moves to PUBLISHED_INDEX_CONFIRMATIONS blocks behind the block
 * read. Throws as getLogsPaged does.
 */
async function readPublished(
  clients: FirnClients,
  enclaveId: Hex,
  blockNumber: bigint | undefined,
): Promise<Published> {
  const q = { address: clients.addresses.registry, topics: [PUBLISHING_TOPICS, enclaveId] };
  const key = indexKey(clients, enclaveId);
  const to = blockNumber ?? BigInt((await clients.public.request({ method: 'eth_blockNumber' })) as Hex);
  let cached = key === undefined ? undefined : publishedIndex.get(key);
  let base: Published = NOTHING_PUBLISHED;
  let baseAt: bigint | undefined;
  let logs: RawLog[] | undefined;
  if (cached !== undefined && cached.at <= to) {
    const [hash, page] = await Promise.all([
      blockHashAt(clients, cached.at),
      cached.at < to
        ? getLogsPaged(clients, { ...q, fromBlock: cached.at + 1n, toBlock: to }, 'getNode')
        : Promise.resolve([]),
    ]);
    if (hash === cached.hash) {
      base = cached;
      baseAt = cached.at;
      logs = page;
    } else {
      // Not the chain the entry was made on (a reorganisation, or another chain at this URL).
      publishedIndex.delete(key!);
      cached = undefined;
    }
  } else cached = undefined;
  if (logs === undefined) {
    // NodeRegistered sets both fields, so nothing before the latest one matters: read back to it.
    logs = await getLogsBackTo(
      clients,
      { ...q, toBlock: to },
      (l) => l.topics[0] === PUBLISHING_TOPICS[0],
      'getNode',
    );
    // Complete as of any block from the earliest NodeRegistered read on, or from the floor when
    // there is none (the scan went down to the deployment block).
    const start = logs.find((l) => l.topics[0] === PUBLISHING_TOPICS[0]);
    baseAt = start === undefined ? -1n : BigInt(start.blockNumber) - 1n;
  }
  const safe = to - PUBLISHED_INDEX_CONFIRMATIONS;
  if (key !== undefined && safe > baseAt! && (cached === undefined || safe > cached.at)) {
    const hash = await blockHashAt(clients, safe);
    if (hash !== undefined) {
      const upto = logs.filter((l) => BigInt(l.blockNumber) <= safe);
      publishedIndex.delete(key);
      publishedIndex.set(key, { ...applyPublished(base, upto), at: safe, hash });
      if (publishedIndex.size > PUBLISHED_INDEX_MAX) {
        const oldest = publishedIndex.keys().next().value;
        if (oldest !== undefined) publishedIndex.delete(oldest);
      }
    }
  }
  return applyPublished(base, logs);
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
