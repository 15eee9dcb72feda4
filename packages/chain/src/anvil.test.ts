import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { type AnvilInstance, startAnvil } from './anvil.ts';

// startAnvil without a port lets anvil bind port 0 and reads the port back, so two anvils started
// at once (parallel test files) never race for a port picked before it was bound.
const started: AnvilInstance[] = [];
afterAll(async () => {
  await Promise.all(started.map((a) => a.stop()));
});

async function chainIdAt(rpcUrl: string): Promise<number> {
  const res = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
  });
  return Number.parseInt(((await res.json()) as { result: string }).result, 16);
}

describe('startAnvil', () => {
  it('four anvils started at once each answer on the port they report', async () => {
    const all = await Promise.all([1, 2, 3, 4].map((i) => startAnvil({ accounts: 1, chainId: 31_000 + i })));
    started.push(...all);
    expect(new Set(all.map((a) => a.port)).size).toBe(4);
    for (const [i, a] of all.entries()) {
      expect(a.rpcUrl).toBe(`http://127.0.0.1:${a.port}`);
      // Each URL reaches its own anvil, not a neighbour's.
      expect(await chainIdAt(a.rpcUrl)).toBe(31_001 + i);
    }
  });

  it('a port given explicitly is used, and one already taken is E_UNAVAILABLE', async () => {
    // A listener that accepts and never answers holds the port (startAnvil's probe reaches it).
    const held: Socket[] = [];
    const holder: Server = createServer((c) => held.push(c));
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const taken = (holder.address() as { port: number }).port;
    try {
      await expect(startAnvil({ port: taken, accounts: 1 })).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
    } finally {
      for (const c of held) c.destroy();
      await new Promise<void>((r) => holder.close(() => r()));
    }
    const a = await startAnvil({ port: taken, accounts: 1 });
    started.push(a);
    expect(a.port).toBe(taken);
    expect(await chainIdAt(a.rpcUrl)).toBe(31_337);
  });
});
