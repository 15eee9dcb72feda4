import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FirnClients, watchRegistrations } from '@firn/chain';
import type { Hex } from '@firn/core';
import { privateKeyToAccount } from 'viem/accounts';
import { describe, expect, it } from 'vitest';
import { backoffMs, CursorStore } from './cursorStore.ts';
import { VerifierDaemon } from './verifierDaemon.ts';

const quiet = { info() {}, warn() {}, error() {} };

describe('verifier chain cursors and back-off', () => {
  it('a cursor survives a restart, moves only forward, and a corrupt file reads as none', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'firn-cursor-')), 'c.json');
    const a = new CursorStore(file);
    a.set('proofs', 120n);
    a.set('proofs', 100n);
    expect(new CursorStore(file).get('proofs')).toBe(120n);
    writeFileSync(file, '{"proofs": 12');
    expect(new CursorStore(file).get('proofs')).toBeUndefined();
    writeFileSync(file, JSON.stringify({ proofs: '-5', other: 7 }));
    expect(new CursorStore(file).get('proofs')).toBeUndefined();
    expect([
      backoffMs(100, 0, 1000),
      backoffMs(100, 1, 1000),
      backoffMs(100, 3, 1000),
      backoffMs(100, 9, 1000),
    ]).toEqual([100, 200, 800, 1000]);
  });

  it('the registration watch backs off while the RPC is down and resumes from its block when it is back', async () => {
    let down = true;
    const polls: number[] = [];
    const scanned: [bigint, bigint][] = [];
    const fake = {
      addresses: { registry: '0x0000000000000000000000000000000000000001' as Hex, deployBlock: 1n },
      public: {
        async getBlockNumber() {
          polls.push(Date.now());
          if (down) throw new Error('fetch failed: ECONNREFUSED');
          return 20n;
        },
        async getContractEvents(a: { fromBlock: bigint; toBlock: bigint }) {
          scanned.push([a.fromBlock, a.toBlock]);
          return [];
        },
      },
    } as unknown as FirnClients;
    const progress: bigint[] = [];
    const w = watchRegistrations(fake, {
      fromBlock: 10n,
      pollIntervalMs: 20,
      maxBackoffMs: 400,
      onEvent: () => undefined,
      onProgress: (n) => progress.push(n),
    });
    await new Promise((r) => setTimeout(r, 700));
    const gaps = polls.slice(1).map((t, i) => t - polls[i]!);
    // 20 ms apart at first, then doubling: far fewer polls than 700 / 20.
    expect(polls.length).toBeLessThan(10);
    expect(gaps.at(-1)!).toBeGreaterThan(gaps[0]! * 3);
    expect(w.nextBlock).toBe(10n);
    down = false;
    await new Promise((r) => setTimeout(r, 600));
    w.stop();
    expect(scanned[0]![0]).toBe(10n);
    expect(w.nextBlock).toBe(21n);
    expect(progress.at(-1)).toBe(21n);
  });

  it('a restarted verifier resumes from its saved cursor, not from the deployment block', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'firn-verifier-state-'));
    const jobMarket = '0x00000000000000000000000000000000000000aa' as Hex;
    writeFileSync(
      // The file of this verifier's account (key 0x11…11).
      join(
        stateDir,
        `verifier-cursors-${privateKeyToAccount(`0x${'11'.repeat(32)}`).address.toLowerCase()}.json`,
      ),
      JSON.stringify({ [`${jobMarket}:registrations`]: '4242', [`${jobMarket}:proofs`]: '4000' }),
    );
    const d = new VerifierDaemon({
      rpcUrl: 'http://127.0.0.1:9', // nothing listens: the watch fails and backs off
      verifierKey: `0x${'11'.repeat(32)}`,
      deployment: {
        chainId: 31337,
        registry: '0x00000000000000000000000000000000000000bb',
        verifierSet: '0x00000000000000000000000000000000000000cc',
        jobMarket,
        dataLedger: '0x00000000000000000000000000000000000000dd',
        deployBlock: 7n,
      } as ConstructorParameters<typeof VerifierDaemon>[0]['deployment'],
      policy: {} as ConstructorParameters<typeof VerifierDaemon>[0]['policy'],
      logger: quiet,
      stateDir,
      challengeLiveness: false,
      sweepIntervalMs: 60_000,
    });
    d.start();
    try {
      expect(d.nextRegistrationBlock).toBe(4242n);
      expect(d.proofs?.cursor).toBe(4000n);
    } finally {
      d.stop();
    }
  });
});
