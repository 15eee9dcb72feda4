import {
  createFirnClients,
  type FirnClients,
  type FirnNode,
  firnRegistryAbi,
  getNode,
  listEnclaveIdsByStatus,
  NodeStatus,
  toChainError,
} from '@firn/chain';
import { FirnError, type Hex } from '@firn/core';

/**
 * A view of the registry that a requester can trust more than one RPC endpoint
 * (docs/decisions/0870-trusted-chain-view.md). Every read is made at one pinned block number on
 * every configured endpoint, and the answers must be identical; endpoints whose latest blocks are
 * further apart than `maxLagBlocks`, or whose hashes for the pinned block differ, are a
 * disagreement too. A disagreement is E_CHAIN_DISAGREEMENT: the requester stops before anything
 * leaves. With one endpoint the view is only as honest as that endpoint; the requester's pinned
 * measurement allow-list (policy) is what protects then.
 */

export interface ChainViewOptions {
  /** How far apart the endpoints' latest block numbers may be (default 2). */
  maxLagBlocks?: number;
}

/** The block all reads of one decision are made at. */
export interface PinnedBlock {
  number: bigint;
  hash: Hex;
}

export class ChainDisagreementError extends FirnError {
  override readonly name = 'ChainDisagreementError';
  constructor(what: string, detail: string) {
    super('E_CHAIN_DISAGREEMENT', `RPC endpoints disagree on ${what}: ${detail}`, {
      details: { what },
    });
  }
}

/** JSON with bigints as decimal strings and hex in lowercase, for comparing answers. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    typeof x === 'bigint' ? `${x}n` : typeof x === 'string' && x.startsWith('0x') ? x.toLowerCase() : x,
  );
}

export class AgreeingChainView {
  readonly maxLagBlocks: number;

  constructor(
    /** The first is the requester's main endpoint; every one must agree. */
    readonly endpoints: readonly FirnClients[],
    opts: ChainViewOptions = {},
  ) {
    if (endpoints.length === 0) throw new FirnError('E_INVALID_INPUT', 'a chain view needs an RPC endpoint');
    this.maxLagBlocks = opts.maxLagBlocks ?? 2;
  }

  /** A view over `primary` and one more client per extra RPC URL (same deployment). */
  static of(primary: FirnClients, extraRpcUrls: readonly string[] = [], opts: ChainViewOptions = {}) {
    const extra = extraRpcUrls.map((u) => createFirnClients(u, undefined, primary.addresses));
    return new AgreeingChainView([primary, ...extra], opts);
  }

  /** How many endpoints must agree. */
  get size(): number {
    return this.endpoints.length;
  }

  /**
   * Pick the block to read at: the lowest of the endpoints' latest blocks, provided they are within
   * maxLagBlocks of each other and all report the same hash for it.
   */
  async pinBlock(): Promise<PinnedBlock> {
    const latest = await Promise.all(
      this.endpoints.map((c) =>
        c.public.getBlockNumber({ cacheTime: 0 }).catch((e: unknown) => {
          throw toChainError(e, 'getBlockNumber');
        }),
      ),
    );
    let lo = latest[0]!;
    let hi = latest[0]!;
    for (const n of latest) {
      if (n < lo) lo = n;
      if (n > hi) hi = n;
    }
    if (hi - lo > BigInt(this.maxLagBlocks))
      throw new ChainDisagreementError(
        'the latest block',
        `block numbers ${latest.join(', ')} are more than ${this.maxLagBlocks} apart`,
      );
    if (this.endpoints.length === 1) {
      const b = await this.endpoints[0]!.public.getBlock({ blockNumber: lo });
      return { number: lo, hash: b.hash! };
    }
    const hashes = await this.read({ number: lo, hash: '0x' }, `block ${lo}`, async (c, blockNumber) => {
      const b = await c.public.getBlock({ blockNumber });
      return b.hash;
    });
    return { number: lo, hash: hashes! };
  }

  /** Run `f` on every endpoint at `block` and return the one answer they all gave. */
  async read<T>(
    block: PinnedBlock,
    what: string,
    f: (c: FirnClients, blockNumber: bigint) => Promise<T>,
  ): Promise<T> {
    const answers = await Promise.all(this.endpoints.map((c) => f(c, block.number)));
    const first = canonical(answers[0]);
    for (let i = 1; i < answers.length; i++)
      if (canonical(answers[i]) !== first)
        throw new ChainDisagreementError(
          what,
          `endpoint ${i + 1} differs from endpoint 1 at block ${block.number}`,
        );
    return answers[0]!;
  }
}

/** IFirnRegistry.getNode at a block. */
export function readNodeAt(c: FirnClients, enclaveId: Hex, blockNumber: bigint): Promise<FirnNode> {
  return getNode(c, enclaveId, { blockNumber });
}

/** The Active Enclave IDs (IFirnRegistry.enclaveIdsByStatus) at a block. */
export function readEnclaveIdsAt(c: FirnClients, blockNumber: bigint): Promise<readonly Hex[]> {
  return listEnclaveIdsByStatus(c, NodeStatus.Active, 200, blockNumber);
}

/** IFirnRegistry.isMeasurementAllowed at a block. */
export async function readMeasurementAllowedAt(
  c: FirnClients,
  teeType: number,
  measurement: Hex,
  blockNumber: bigint,
): Promise<boolean> {
  try {
    return await c.public.readContract({
      address: c.addresses.registry,
      abi: firnRegistryAbi,
      functionName: 'isMeasurementAllowed',
      args: [teeType, measurement],
      blockNumber,
    });
  } catch (e) {
    throw toChainError(e, 'isMeasurementAllowed');
  }
}

/** A node's registry record and whether its measurement is allow-listed, both at one block. */
export interface NodeEligibility {
  node: FirnNode;
  measurementAllowed: boolean;
  block: PinnedBlock;
}

/**
 * Read a node and its measurement's allow-list entry at one pinned block through the view (every
 * endpoint must agree on both). `block` defaults to a freshly pinned one.
 */
export async function readNodeEligibility(
  view: AgreeingChainView,
  enclaveId: Hex,
  block?: PinnedBlock,
): Promise<NodeEligibility> {
  const b = block ?? (await view.pinBlock());
  const node = await view.read(b, `node ${enclaveId}`, (c, n) => readNodeAt(c, enclaveId, n));
  const measurementAllowed = await view.read(b, `the allow-list entry of ${node.measurement}`, (c, n) =>
    readMeasurementAllowedAt(c, node.teeType, node.measurement, n),
  );
  return { node, measurementAllowed, block: b };
}

/** Every registered node with its allow-list entry, all at one pinned block. */
export async function readAllNodeEligibility(view: AgreeingChainView): Promise<NodeEligibility[]> {
  const block = await view.pinBlock();
  const ids = await view.read(block, 'the registered Enclave IDs', (c, n) => readEnclaveIdsAt(c, n));
  const out: NodeEligibility[] = [];
  for (const id of ids) out.push(await readNodeEligibility(view, id, block));
  return out;
}
