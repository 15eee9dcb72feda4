import { FirnError } from '@firn/core';
import { type Address, decodeEventLog, type Hex, toEventSelector } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import { getLogsBackTo, getLogsPaged, type RawLog } from '../getLogsPaged.ts';
import type { FirnNode, NodeStatus } from '../types.ts';
import { assertBytes32 } from '../validate.ts';

/**
 * Read one node; an unknown Enclave ID comes back with status None and zero fields.
 * `opts.blockNumber` reads it as of that block (default: the head, read first). The registry does
 * not store the KEM public key and the endpoint (decision 1140): they come from the node's latest
 * NodeRegistered, KeysRotated or EndpointUpdated event up to that block, in one log query. The
 * record and the events are read at the same block, so the KEM key is never another round's than
 * the enclave address beside it (decision 1831); `publishedRound` says which round's event it
 * came from.
 */
export async function getNode(
  clients: FirnClients,
  enclaveId: Hex,
  opts: { blockNumber?: bigint } = {},
): Promise<FirnNode> {
  assertBytes32(enclaveId, 'enclaveId');
  try {
    const at = opts.blockNumber ?? (await clients.public.getBlockNumber({ cacheTime: 0 }));
    const [n, published] = await Promise.all([
      clients.public.readContract({
        address: clients.addresses.registry,
        abi: firnRegistryAbi,
        functionName: 'getNode',
        args: [enclaveId],
        blockNumber: at,
      }),
      readPublished(clients, enclaveId, at),
    ]);
    return {
      enclaveId,
      operator: n.operator,
      teeType: n.teeType,
      status: n.status as NodeStatus,
      rotationPending: n.rotationPending,
      round: n.round,
      unbondingEndsAt: BigInt(n.unbondingEndsAt),
      roundEndsAt: BigInt(n.roundEndsAt),
      lockedUntil: BigInt(n.lockedUntil),
      snapshotId: BigInt(n.snapshotId),
      measurement: n.measurement,
      platformIdHash: n.platformIdHash,
      enclaveAddress: n.enclaveAddress,
      kemPublicKey: published.kemPublicKey,
      publishedRound: published.round,
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
  /** The round of the NodeRegistered or KeysRotated event `kemPublicKey` comes from (0: none). */
  round: number;
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

/** Number and hash of block `n` ('latest': the head), or undefined when the chain has no such block. */
async function blockAt(
  clients: FirnClients,
  n: bigint | 'latest',
): Promise<{ number: bigint; hash: Hex } | undefined> {
  const b = (await clients.public.request({
    method: 'eth_getBlockByNumber',
    params: [n === 'latest' ? 'latest' : `0x${n.toString(16)}`, false],
  })) as { hash?: Hex | null; number?: Hex | null } | null;
  if (b?.hash == null || b.number == null) return undefined;
  return { number: BigInt(b.number), hash: b.hash };
}

/** The hash of block `n` (undefined when the chain has no such block). */
async function blockHashAt(clients: FirnClients, n: bigint): Promise<Hex | undefined> {
  return (await blockAt(clients, n))?.hash;
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
  let { kemPublicKey, round, endpoint } = base;
  for (const log of logs) {
    const ev = decodeEventLog({
      abi: firnRegistryAbi,
      topics: log.topics as [Hex, ...Hex[]],
      data: log.data,
    });
    if (ev.eventName === 'NodeRegistered') {
      kemPublicKey = ev.args.kemPublicKey;
      round = ev.args.round;
      endpoint = ev.args.endpoint;
    } else if (ev.eventName === 'KeysRotated') {
      kemPublicKey = ev.args.kemPublicKey;
      round = ev.args.round;
    } else if (ev.eventName === 'EndpointUpdated') {
      endpoint = ev.args.endpoint;
    }
  }
  return { kemPublicKey, round, endpoint };
}

const NOTHING_PUBLISHED: Published = { kemPublicKey: `0x${'0'.repeat(64)}`, round: 0, endpoint: '' };

/**
 * The latest KEM key and endpoint a node published in events, up to `blockNumber` (default the
 * latest block). With an index entry at or below that block (an earlier read in this process through
 * the same endpoint), only the logs after it are read; otherwise back to the latest NodeRegistered
 * (getLogsBackTo). The index then moves to PUBLISHED_INDEX_CONFIRMATIONS blocks behind the block
 * read.
 *
 * Every indexed read is bracketed (decision 1462, "A chain switch in the middle of a read"): the
 * hash of the block read (`to`) is read before any other request and again after all of them,
 * sequentially. Only when both agree, and the RPC answers the deployment's chain id, is an entry
 * used and stored: a chain behind the URL that changes in the middle of the read (a restarted
 * devnet, a load balancer turning to another backend) can then neither put one chain's values
 * under the other's hash nor serve them. When they disagree the read starts over (at most 3 times,
 * then E_CHAIN); when the chain id differs the answer is read without the index.
 * Throws as getLogsPaged does.
 */
async function readPublished(
  clients: FirnClients,
  enclaveId: Hex,
  blockNumber: bigint | undefined,
): Promise<Published> {
  const key = indexKey(clients, enclaveId);
  if (key === undefined) return readUnindexed(clients, enclaveId, blockNumber);
  for (let attempt = 1; ; attempt++) {
    const r = await readBracketed(clients, enclaveId, blockNumber, key);
    if (r !== undefined) return r;
    if (attempt >= 3)
      throw new FirnError(
        'E_CHAIN',
        `getNode: the chain behind the RPC URL changed during each of ${attempt} reads (the hash of the block read was not the same before and after): check that the URL serves one chain (deployment chain id ${clients.addresses.chainId})`,
        { details: { attempts: attempt } },
      );
  }
}

/** The log query of a node's publishing events on the deployment's registry. */
function publishingQuery(clients: FirnClients, enclaveId: Hex) {
  return { address: clients.addresses.registry, topics: [PUBLISHING_TOPICS, enclaveId] };
}

/** Every publishing log of the node back to its latest NodeRegistered, up to `to`; no index. */
async function readUnindexed(
  clients: FirnClients,
  enclaveId: Hex,
  to: bigint | undefined,
): Promise<Published> {
  return applyPublished(NOTHING_PUBLISHED, await scanBack(clients, enclaveId, to));
}

/** Publishing logs up to `to` (default latest) back to the latest NodeRegistered (getLogsBackTo). */
function scanBack(clients: FirnClients, enclaveId: Hex, to: bigint | undefined): Promise<RawLog[]> {
  return getLogsBackTo(
    clients,
    { ...publishingQuery(clients, enclaveId), ...(to === undefined ? {} : { toBlock: to }) },
    // NodeRegistered sets both fields, so nothing before the latest one matters.
    (l) => l.topics[0] === PUBLISHING_TOPICS[0],
    'getNode',
  );
}

/**
 * One indexed read of readPublished between two reads of the hash of block `to`; undefined when
 * they differ (the chain behind the URL changed meanwhile: nothing is stored, the caller reads
 * again). Requests, in sequence: the block read (number and hash; the head when `blockNumber` is
 * undefined); then together the chain id, the entry's block hash, the hash of the block the new
 * entry will be at, and the logs; then the block read's hash again.
 */
async function readBracketed(
  clients: FirnClients,
  enclaveId: Hex,
  blockNumber: bigint | undefined,
  key: string,
): Promise<Published | undefined> {
  const before = await blockAt(clients, blockNumber ?? 'latest');
  // No such block (asked beyond the head): nothing to anchor an entry to.
  if (before === undefined) return readUnindexed(clients, enclaveId, blockNumber);
  const to = before.number;
  const stored = publishedIndex.get(key);
  const cached = stored !== undefined && stored.at <= to ? stored : undefined;
  const safe = to - PUBLISHED_INDEX_CONFIRMATIONS;
  // The new entry moves forward only (a read at an older block leaves a newer entry in place).
  const advance = safe >= 0n && (stored === undefined || safe > stored.at);
  const q = publishingQuery(clients, enclaveId);
  const [chainId, cachedHash, safeHash, page] = await Promise.all([
    clients.public.request({ method: 'eth_chainId' }).then((x) => Number(BigInt(x as Hex))),
    cached === undefined ? undefined : blockHashAt(clients, cached.at),
    advance ? blockHashAt(clients, safe) : undefined,
    cached === undefined
      ? undefined
      : cached.at < to
        ? getLogsPaged(clients, { ...q, fromBlock: cached.at + 1n, toBlock: to }, 'getNode')
        : ([] as RawLog[]),
  ]);
  let base: Published = NOTHING_PUBLISHED;
  let baseAt: bigint;
  let logs: RawLog[];
  const usable = cached !== undefined && cachedHash === cached.hash && chainId === clients.addresses.chainId;
  if (usable && page !== undefined) {
    base = cached;
    baseAt = cached.at;
    logs = page;
  } else {
    // No entry, or not one of the chain now behind the URL (a reorganisation, another chain).
    if (cached !== undefined && cachedHash !== cached.hash) publishedIndex.delete(key);
    logs = await scanBack(clients, enclaveId, to);
    // Complete as of any block from the earliest NodeRegistered read on, or from the floor when
    // there is none (the scan went down to the deployment block).
    const start = logs.find((l) => l.topics[0] === PUBLISHING_TOPICS[0]);
    baseAt = start === undefined ? -1n : BigInt(start.blockNumber) - 1n;
  }
  const after = await blockHashAt(clients, to);
  if (after !== before.hash) return undefined;
  if (chainId !== clients.addresses.chainId) return applyPublished(NOTHING_PUBLISHED, logs);
  if (advance && safe > baseAt && safeHash !== undefined) {
    const upto = logs.filter((l) => BigInt(l.blockNumber) <= safe);
    publishedIndex.delete(key);
    publishedIndex.set(key, { ...applyPublished(base, upto), at: safe, hash: safeHash });
    if (publishedIndex.size > PUBLISHED_INDEX_MAX) {
      const oldest = publishedIndex.keys().next().value;
      if (oldest !== undefined) publishedIndex.delete(oldest);
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
