import type { FirnError } from '@firn/core';
import {
  type AbiEvent,
  encodeAbiParameters,
  encodeEventTopics,
  type Hex,
  keccak256,
  type PublicClient,
  toHex,
} from 'viem';
import { describe, expect, it } from 'vitest';
import { firnJobMarketAbi } from './abi/generated.ts';
import type { FirnClients } from './clients.ts';
import { getLogsBackTo, getLogsPaged, MAX_LOG_PAGES } from './getLogsPaged.ts';
import { getJobEvents } from './jobMarket/jobRecord.ts';
import type { FirnDeployment } from './types.ts';

// An RPC endpoint like the public providers': eth_getLogs over more than `limit` blocks is refused
// ("block range too large"), and the chain is long after the deployment block. Reads that scan
// from the deployment block must page, in chain order.
const MARKET = '0x00000000000000000000000000000000000000aa' as const;
const jobId = keccak256(toHex('paged job'));
const b32 = (s: string) => keccak256(toHex(s));

function event(name: string): AbiEvent {
  return firnJobMarketAbi.find((x) => x.type === 'event' && x.name === name) as AbiEvent;
}
function log(name: string, blockNumber: bigint, indexed: Record<string, unknown>, data: unknown[]) {
  const ev = event(name);
  return {
    address: MARKET,
    blockNumber: toHex(blockNumber),
    topics: encodeEventTopics({ abi: [ev], eventName: name, args: indexed } as never) as Hex[],
    data: encodeAbiParameters(
      ev.inputs.filter((i) => !i.indexed),
      data,
    ),
  };
}

const posted = log('JobPosted', 120n, { jobId, requester: `0x${'11'.repeat(20)}` }, [
  10n,
  1,
  b32('workload'),
  b32('inputs'),
  2_000_000_000n,
  600n,
  5n,
  [b32('m')],
  [],
]);
const claim = (block: bigint, m: string) =>
  log('JobClaimed', block, { jobId, enclaveId: b32('node'), operator: `0x${'22'.repeat(20)}` }, [
    1n,
    1n,
    b32(m),
    3n,
  ]);
const LOGS = [posted, claim(7_000n, 'first claim'), claim(11_990n, 'latest claim')];

function rangeLimitedRpc(head: bigint, limit: bigint, logs = LOGS) {
  const calls: [bigint, bigint][] = [];
  const request = async ({ method, params }: { method: string; params?: unknown[] }) => {
    if (method === 'eth_blockNumber') return toHex(head);
    if (method !== 'eth_getLogs') throw new Error(`unexpected ${method}`);
    const f = params![0] as { fromBlock: Hex; toBlock: Hex | 'latest'; topics: (Hex | Hex[])[] };
    const from = BigInt(f.fromBlock);
    const to = f.toBlock === 'latest' ? head : BigInt(f.toBlock);
    calls.push([from, to]);
    if (to - from + 1n > limit) throw new Error(`block range too large: ${to - from + 1n} > ${limit}`);
    const t0 = f.topics[0] as Hex[];
    return logs.filter((l) => {
      const b = BigInt(l.blockNumber);
      return b >= from && b <= to && t0.includes(l.topics[0]!) && l.topics[1] === f.topics[1];
    });
  };
  const clients = {
    public: { request } as unknown as PublicClient,
    addresses: { chainId: 1, jobMarket: MARKET, deployBlock: 100n } as unknown as FirnDeployment,
  } satisfies FirnClients;
  return { clients, calls };
}

describe('reading full records through an RPC that caps the block range of eth_getLogs', () => {
  it('getJobEvents walks back 12 000 blocks through a 10 000-block cap to the JobPosted, in chain order', async () => {
    const { clients, calls } = rangeLimitedRpc(12_000n, 10_000n);
    const ev = await getJobEvents(clients, jobId);
    expect(ev.posted?.terms.workloadHash).toBe(b32('workload'));
    expect(ev.posted?.blockNumber).toBe(120n);
    // The latest claim wins: windows are joined in block order.
    expect(ev.claimed).toMatchObject({ blockNumber: 11_990n, measurement: b32('latest claim') });
    // Every call within the page size, newest first, growing 256, 512, ... and together covering
    // [deployBlock, head] with no gap or overlap.
    expect(calls.every(([a, b]) => b - a + 1n <= 5000n)).toBe(true);
    expect(calls[0]).toEqual([11_745n, 12_000n]);
    expect(calls[1]).toEqual([11_233n, 11_744n]);
    expect(calls.at(-1)![0]).toBe(100n);
    for (let i = 1; i < calls.length; i++) expect(calls[i]![1]).toBe(calls[i - 1]![0] - 1n);
  });

  it('a recent job costs one eth_getLogs call however long the chain is', async () => {
    const recent = [{ ...posted, blockNumber: toHex(999_900n) }, { ...claim(999_950n, 'only claim') }];
    const { clients, calls } = rangeLimitedRpc(1_000_000n, 10_000n, recent);
    const ev = await getJobEvents(clients, jobId);
    expect(ev.posted?.blockNumber).toBe(999_900n);
    expect(ev.claimed?.measurement).toBe(b32('only claim'));
    expect(calls).toEqual([[999_745n, 1_000_000n]]);
  });

  it('a job with no JobPosted is read down to the deployment block (nothing older exists)', async () => {
    const { clients, calls } = rangeLimitedRpc(12_000n, 10_000n, [claim(7_000n, 'orphan')]);
    const ev = await getJobEvents(clients, jobId);
    expect(ev.posted).toBeUndefined();
    expect(ev.claimed?.measurement).toBe(b32('orphan'));
    expect(calls.at(-1)![0]).toBe(100n);
  });

  it('pages by the clients’ logBlockRange, and stops at the block asked for', async () => {
    const { clients, calls } = rangeLimitedRpc(12_000n, 1000n);
    const ev = await getJobEvents({ ...clients, logBlockRange: 1000n }, jobId, { blockNumber: 8000n });
    expect(ev.claimed?.measurement).toBe(b32('first claim'));
    expect(ev.posted?.blockNumber).toBe(120n);
    expect(calls[0]).toEqual([7745n, 8000n]);
    expect(calls.every(([a, b]) => b - a + 1n <= 1000n)).toBe(true);
    expect(calls.at(-1)).toEqual([100n, 232n]);
  });

  it('getLogsBackTo stops at the newest window holding a start log and returns chain order', async () => {
    // A node-like history: start (registration) at 200 and again at 9 000, updates between.
    const start = (b: bigint) => ({ ...posted, blockNumber: toHex(b) });
    const update = (b: bigint, m: string) => claim(b, m);
    const history = [start(200n), update(5_000n, 'old'), start(9_000n), update(11_000n, 'new')];
    const { clients, calls } = rangeLimitedRpc(12_000n, 10_000n, history);
    const t0 = posted.topics[0]!;
    const logs = await getLogsBackTo(
      clients,
      { address: MARKET, topics: [[t0, claim(1n, 'x').topics[0]!], jobId] },
      (l) => l.topics[0] === t0,
    );
    expect(logs.map((l) => BigInt(l.blockNumber))).toEqual([9_000n, 11_000n]);
    expect(calls).toEqual([
      [11_745n, 12_000n],
      [11_233n, 11_744n],
      [10_209n, 11_232n],
      [8_161n, 10_208n],
    ]);
  });

  it('refuses a read that would take more than MAX_LOG_PAGES calls, before any call (E_CHAIN)', async () => {
    const { clients, calls } = rangeLimitedRpc(100n + BigInt(MAX_LOG_PAGES) * 10n, 10n);
    const err = (await getLogsPaged(
      { ...clients, logBlockRange: 10n },
      { address: MARKET, topics: [] },
    ).catch((e: unknown) => e)) as FirnError;
    expect(err.code).toBe('E_CHAIN');
    expect(err.message).toMatch(/over the limit of 10000: check the deployment block/);
    expect(calls).toEqual([]);
  });

  it('a range that ends before it starts reads nothing', async () => {
    const { clients, calls } = rangeLimitedRpc(50n, 10_000n);
    expect(await getLogsPaged(clients, { address: MARKET, topics: [] })).toEqual([]);
    expect(calls).toEqual([]);
  });
});
