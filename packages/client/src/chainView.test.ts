import type { FirnClients } from '@firn/chain';
import { describe, expect, it } from 'vitest';
import { AgreeingChainView } from './chainView.ts';

// The agreement rules on endpoints whose answers the test controls (the real registry path, with
// a lying JSON-RPC proxy in front of anvil, is in tests/e2e/access.test.ts).
interface FakeChain {
  latest: bigint;
  hashOf: (n: bigint) => `0x${string}`;
  value: (n: bigint) => unknown;
}

function endpoint(c: FakeChain): FirnClients {
  return {
    public: {
      getBlockNumber: async () => c.latest,
      getBlock: async ({ blockNumber }: { blockNumber: bigint }) => ({ hash: c.hashOf(blockNumber) }),
    },
    addresses: {},
  } as unknown as FirnClients;
}

const honestHash = (n: bigint) => `0x${n.toString(16).padStart(64, '0')}` as const;
const honest = (latest: bigint): FakeChain => ({
  latest,
  hashOf: honestHash,
  value: (n) => ({ n, ok: true }),
});
const readValue = (chains: FakeChain[]) => (c: FirnClients, n: bigint) =>
  Promise.resolve(chains[(c as unknown as { i: number }).i]!.value(n));

function view(chains: FakeChain[], maxLagBlocks?: number) {
  const eps = chains.map((c, i) => Object.assign(endpoint(c), { i }));
  return new AgreeingChainView(eps, maxLagBlocks === undefined ? {} : { maxLagBlocks });
}

describe('AgreeingChainView', () => {
  it('reads at the lowest latest block when the endpoints agree', async () => {
    const chains = [honest(100n), honest(101n), honest(99n)];
    const v = view(chains);
    const b = await v.pinBlock();
    expect(b).toEqual({ number: 99n, hash: honestHash(99n) });
    expect(await v.read(b, 'x', readValue(chains))).toEqual({ n: 99n, ok: true });
  });

  it('refuses endpoints too far apart, a different hash for the pinned block, and any differing answer', async () => {
    await expect(view([honest(100n), honest(90n)]).pinBlock()).rejects.toMatchObject({
      code: 'E_CHAIN_DISAGREEMENT',
      message: expect.stringContaining('more than 2 apart'),
    });
    expect((await view([honest(100n), honest(90n)], 10).pinBlock()).number).toBe(90n);
    const forked: FakeChain = { ...honest(100n), hashOf: () => `0x${'ab'.repeat(32)}` as const };
    await expect(view([honest(100n), forked]).pinBlock()).rejects.toMatchObject({
      code: 'E_CHAIN_DISAGREEMENT',
    });
    const liar: FakeChain = { ...honest(100n), value: (n) => ({ n, ok: false }) };
    const chains = [honest(100n), honest(100n), liar];
    const v = view(chains);
    await expect(v.read(await v.pinBlock(), 'the allow-list entry', readValue(chains))).rejects.toMatchObject(
      {
        code: 'E_CHAIN_DISAGREEMENT',
        message: expect.stringContaining('endpoint 3'),
      },
    );
    // A liar that differs only in hex case or bigint formatting is not a disagreement.
    const casey: FakeChain = { ...honest(100n), value: () => ({ a: '0xABCD', b: 5n }) };
    const lower: FakeChain = { ...honest(100n), value: () => ({ a: '0xabcd', b: 5n }) };
    const cv = view([lower, casey]);
    expect(await cv.read(await cv.pinBlock(), 'x', readValue([lower, casey]))).toEqual({
      a: '0xabcd',
      b: 5n,
    });
  });
});
