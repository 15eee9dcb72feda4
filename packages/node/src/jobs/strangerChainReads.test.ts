import { describe, expect, it } from 'vitest';
import { StrangerChainReads } from './strangerChainReads.ts';

// The cache and budget of chain reads made for unauthenticated requests (decision 1741): what a
// stranger's requests may cost the operator's RPC, and how soon an answer that changed is seen.
describe('chain reads for strangers', () => {
  it('a "nothing there" answer is reused for negativeTtlMs only, a lasting one for positiveTtlMs', async () => {
    const reads = new StrangerChainReads({ negativeTtlMs: 80, positiveTtlMs: 60_000 });
    let onChain = false;
    let calls = 0;
    const ask = () =>
      reads.read(
        'job:1',
        '10.0.0.1',
        async () => {
          calls++;
          return onChain;
        },
        (v) => v,
      );
    expect(await ask()).toBe(false);
    expect(await ask()).toBe(false);
    expect(calls).toBe(1);
    // The job appears on chain: refused at most negativeTtlMs longer, then seen.
    onChain = true;
    expect(await ask()).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(await ask()).toBe(true);
    expect(calls).toBe(2);
    await new Promise((r) => setTimeout(r, 100));
    expect(await ask()).toBe(true);
    expect(calls).toBe(2);
    expect(reads.peek('job:1')).toBe(true);
  });

  it('the same read asked at once is made once, and a failed read is not cached', async () => {
    const reads = new StrangerChainReads();
    let calls = 0;
    let fail = true;
    const load = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 20));
      if (fail) throw new Error('rpc down');
      return 1;
    };
    const both = [
      reads.read('k', '10.0.0.1', load, () => true),
      reads.read('k', '10.0.0.2', load, () => true),
    ];
    await expect(Promise.all(both)).rejects.toThrow('rpc down');
    expect(calls).toBe(1);
    fail = false;
    expect(await reads.read('k', '10.0.0.1', load, () => true)).toBe(1);
    expect(calls).toBe(2);
  });

  it('cache misses are budgeted per client (an IPv6 /64 is one) and over all clients; over budget is 429 before any read', async () => {
    const reads = new StrangerChainReads({ perClientPer10s: 3, totalPer10s: 5 });
    let calls = 0;
    const miss = (ip: string) =>
      reads.read(
        `job:${Math.random()}`,
        ip,
        async () => {
          calls++;
          return null;
        },
        () => false,
      );
    for (let i = 1; i <= 3; i++) await miss(`2001:db8:1:2::${i}`);
    await expect(miss('2001:db8:1:2:ffff::1')).rejects.toMatchObject({
      code: 'E_RATE_LIMITED',
      message: expect.stringMatching(/limit 3 per 10 s/),
    });
    expect(calls).toBe(3);
    await miss('10.0.0.1');
    await miss('10.0.0.2');
    await expect(miss('10.0.0.3')).rejects.toMatchObject({
      code: 'E_RATE_LIMITED',
      message: expect.stringMatching(/most chain checks .* \(5 per 10 s\)/),
    });
    expect(calls).toBe(5);
    // A cached answer costs no budget.
    const reads2 = new StrangerChainReads({ perClientPer10s: 1, totalPer10s: 1 });
    await reads2.read(
      'same',
      '10.0.0.1',
      async () => null,
      () => false,
    );
    for (let i = 0; i < 10; i++)
      expect(
        await reads2.read(
          'same',
          '10.0.0.1',
          async () => 1,
          () => false,
        ),
      ).toBe(null);
  });

  it("a known signer's misses spend its own budget only: strangers over the client and node budgets do not refuse it", async () => {
    const reads = new StrangerChainReads({ perClientPer10s: 1, totalPer10s: 2, perKnownSignerPer10s: 3 });
    let calls = 0;
    const load = async () => {
      calls++;
      return null;
    };
    // Strangers spend the node-wide budget to zero.
    await reads.read(`job:${Math.random()}`, '10.0.0.1', load, () => false);
    await reads.read(`job:${Math.random()}`, '10.0.0.2', load, () => false);
    await expect(reads.read(`job:${Math.random()}`, '10.0.0.3', load, () => false)).rejects.toMatchObject({
      code: 'E_RATE_LIMITED',
    });
    // A known signer still gets its reads, up to its own budget, whatever client it comes from.
    const signer = '0x00000000000000000000000000000000000000aA';
    for (let i = 0; i < 3; i++) await reads.read(`job:${Math.random()}`, { signer }, load, () => false);
    await expect(
      reads.read(`job:${Math.random()}`, { signer: signer.toLowerCase() }, load, () => false),
    ).rejects.toMatchObject({ code: 'E_RATE_LIMITED', message: expect.stringMatching(/limit 3 per 10 s/) });
    expect(calls).toBe(5);
    // Another signer has its own budget.
    await reads.read(
      `job:${Math.random()}`,
      { signer: '0x00000000000000000000000000000000000000bb' },
      load,
      () => false,
    );
    expect(calls).toBe(6);
  });
});
