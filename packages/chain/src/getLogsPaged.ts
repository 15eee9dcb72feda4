import { FirnError } from '@firn/core';
import type { Address, Hex } from 'viem';
import { toChainError } from './ChainRevertedError.ts';
import type { FirnClients } from './clients.ts';

/**
 * Blocks per `eth_getLogs` call when the clients name none: within what public RPC providers
 * accept (ranges of 10 000 blocks and less are common limits), as watchRegistrations reads.
 */
export const DEFAULT_LOG_BLOCK_RANGE = 5000n;
/** The most `eth_getLogs` calls one read may make (DEFAULT_LOG_BLOCK_RANGE x 10 000 = 50 M blocks). */
export const MAX_LOG_PAGES = 10_000;
/** Pages asked for at once; results are joined in block order. */
const PAGES_IN_FLIGHT = 4;

/** A raw log as `eth_getLogs` returns it (hex quantities). */
export interface RawLog {
  topics: Hex[];
  data: Hex;
  blockNumber: Hex;
  transactionHash?: Hex;
  logIndex?: Hex;
}

/** What to read: one contract, topic filters as in `eth_getLogs`, an inclusive block range. */
export interface LogQuery {
  address: Address;
  topics: (Hex | Hex[] | null)[];
  /** First block (default: the deployment block). */
  fromBlock?: bigint;
  /** Last block, inclusive (default: the latest block, read once with `eth_blockNumber`). */
  toBlock?: bigint;
}

const hex = (n: bigint): Hex => `0x${n.toString(16)}`;

/**
 * `eth_getLogs` over [fromBlock, toBlock] in pages of `clients.logBlockRange` blocks (default
 * DEFAULT_LOG_BLOCK_RANGE), so a chain long after its deployment block reads through RPC
 * endpoints that cap the block range of one call. Logs come back in chain order. Throws FirnError
 * E_CHAIN when the range needs more than MAX_LOG_PAGES calls (name a later deployment block or a
 * larger range), and the mapped RPC error (toChainError, `what`) when a call fails.
 */
export async function getLogsPaged(
  clients: FirnClients,
  q: LogQuery,
  what = 'eth_getLogs',
): Promise<RawLog[]> {
  const range = clients.logBlockRange ?? DEFAULT_LOG_BLOCK_RANGE;
  if (range < 1n) throw new FirnError('E_INVALID_INPUT', `logBlockRange must be at least 1 (got ${range})`);
  const from = q.fromBlock ?? clients.addresses.deployBlock ?? 0n;
  let to = q.toBlock;
  try {
    if (to === undefined) to = BigInt((await clients.public.request({ method: 'eth_blockNumber' })) as Hex);
  } catch (e) {
    throw toChainError(e, what);
  }
  if (to < from) return [];
  const pages = (to - from) / range + 1n;
  if (pages > BigInt(MAX_LOG_PAGES))
    throw new FirnError(
      'E_CHAIN',
      `reading ${what} logs from block ${from} to ${to} takes ${pages} calls of ${range} blocks, over the limit of ${MAX_LOG_PAGES}: check the deployment block`,
    );
  const starts: bigint[] = [];
  for (let s = from; s <= to; s += range) starts.push(s);
  const out: RawLog[] = [];
  for (let i = 0; i < starts.length; i += PAGES_IN_FLIGHT) {
    const batch = starts.slice(i, i + PAGES_IN_FLIGHT).map(async (s) => {
      const end = s + range - 1n < to ? s + range - 1n : to;
      try {
        return (await clients.public.request({
          method: 'eth_getLogs',
          params: [{ address: q.address, fromBlock: hex(s), toBlock: hex(end), topics: q.topics }],
        })) as unknown as RawLog[];
      } catch (e) {
        throw toChainError(e, what);
      }
    });
    for (const logs of await Promise.all(batch)) out.push(...logs);
  }
  return out;
}

/** Blocks of the first, newest window getLogsBackTo reads; each older window doubles, up to the page size. */
export const FIRST_BACK_WINDOW = 256n;

/**
 * The logs of `q` from the newest window back to the first one holding a log for which `isStart`
 * is true (or to the deployment block), returned in chain order. For reads whose answer is fixed
 * by the latest "start" event and what followed it (a job's JobPosted, a node's NodeRegistered):
 * windows of 256 blocks back from `q.toBlock` (default latest), doubling up to
 * `clients.logBlockRange`, so a recent start costs one or two `eth_getLogs` calls however long
 * the chain is. Logs older than the window holding the start are not read. Throws as
 * getLogsPaged does.
 */
export async function getLogsBackTo(
  clients: FirnClients,
  q: LogQuery,
  isStart: (log: RawLog) => boolean,
  what = 'eth_getLogs',
): Promise<RawLog[]> {
  const floor = q.fromBlock ?? clients.addresses.deployBlock ?? 0n;
  let to: bigint;
  try {
    to = q.toBlock ?? BigInt((await clients.public.request({ method: 'eth_blockNumber' })) as Hex);
  } catch (e) {
    throw toChainError(e, what);
  }
  const range = clients.logBlockRange ?? DEFAULT_LOG_BLOCK_RANGE;
  let span = FIRST_BACK_WINDOW < range ? FIRST_BACK_WINDOW : range;
  const windows: RawLog[][] = [];
  while (to >= floor) {
    const from: bigint = to - span + 1n > floor ? to - span + 1n : floor;
    const page = await getLogsPaged(clients, { ...q, fromBlock: from, toBlock: to }, what);
    windows.unshift(page);
    if (from === floor || page.some(isStart)) break;
    to = from - 1n;
    span = span * 2n < range ? span * 2n : range;
  }
  return windows.flat();
}
