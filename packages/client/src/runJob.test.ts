import type { Hex } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { ChainNotAdvancingError } from './runJob.ts';

const JOB = `0x${'ef'.repeat(32)}` as Hex;

describe('ChainNotAdvancingError', () => {
  it('is E_CHAIN naming the job and the RPC by its origin only (a path or query may hold an API key)', () => {
    const e = new ChainNotAdvancingError(
      'https://user:pw@rpc.example:8545/v3/SECRETKEY?k=SECRET2',
      JOB,
      7n,
      1_000n,
    );
    expect(e.code).toBe('E_CHAIN');
    expect(e.message).toContain('the chain the RPC at https://rpc.example:8545 serves is not advancing');
    expect(e.message).toContain(JOB);
    expect(e.jobId).toBe(JOB);
    const shown = JSON.stringify({ m: e.message, d: e.details, u: e.rpcUrl });
    for (const secret of ['SECRETKEY', 'SECRET2', 'user', 'pw@']) expect(shown).not.toContain(secret);
  });
});
