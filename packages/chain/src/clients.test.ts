import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { createFirnClients, DEFAULT_MAX_FEE_PER_GAS, FEE_CEILING_ENV, resolveFeeCeiling } from './clients.ts';
import type { FirnDeployment } from './types.ts';

// The fee ceiling an operator sets (decision 1470): resolved from the clients' option, then the
// environment (gwei), then the defaults; a malformed or inconsistent one fails at client creation,
// naming the setting, rather than at the first write.

const GWEI = 10n ** 9n;
const deployment: FirnDeployment = {
  chainId: 31337,
  registry: '0x0000000000000000000000000000000000000001',
  verifierSet: '0x0000000000000000000000000000000000000002',
  jobMarket: '0x0000000000000000000000000000000000000003',
  dataLedger: '0x0000000000000000000000000000000000000004',
  deployBlock: 0n,
};
const KEY = `0x${'11'.repeat(32)}` as const;

/** The code and message of what `f` throws. */
function thrown(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    return { code: isFirnError(e) ? e.code : 'not a FirnError', message: (e as Error).message };
  }
  throw new Error('did not throw');
}

describe('resolveFeeCeiling', () => {
  it('defaults to 500 gwei a gas and a tip ceiling of a tenth of it', () => {
    expect(resolveFeeCeiling({}, {})).toEqual({
      maxFeePerGas: 500n * GWEI,
      maxPriorityFeePerGas: 50n * GWEI,
    });
    expect(DEFAULT_MAX_FEE_PER_GAS).toBe(500n * GWEI);
  });

  it('takes the environment in gwei (decimals allowed), the tip following the fee ceiling unless set', () => {
    expect(resolveFeeCeiling({}, { [FEE_CEILING_ENV.maxFeePerGas]: '0.5' })).toEqual({
      maxFeePerGas: GWEI / 2n,
      maxPriorityFeePerGas: GWEI / 20n,
    });
    expect(
      resolveFeeCeiling(
        {},
        { [FEE_CEILING_ENV.maxFeePerGas]: '2000', [FEE_CEILING_ENV.maxPriorityFeePerGas]: '3.000000001' },
      ),
    ).toEqual({ maxFeePerGas: 2000n * GWEI, maxPriorityFeePerGas: 3n * GWEI + 1n });
  });

  it('lets the clients’ option win over the environment', () => {
    expect(resolveFeeCeiling({ maxFeePerGas: 70n }, { [FEE_CEILING_ENV.maxFeePerGas]: '900' })).toEqual({
      maxFeePerGas: 70n,
      maxPriorityFeePerGas: 7n,
    });
    // A tiny fee ceiling still leaves a tip of 1 wei.
    expect(resolveFeeCeiling({ maxFeePerGas: 5n }, {}).maxPriorityFeePerGas).toBe(1n);
  });

  it('refuses a malformed value, naming the variable', () => {
    for (const bad of ['abc', '-1', '0', '1e3', '0x10', '1.0000000001']) {
      const r = thrown(() => resolveFeeCeiling({}, { [FEE_CEILING_ENV.maxFeePerGas]: bad }));
      expect(r.code).toBe('E_INVALID_INPUT');
      expect(r.message).toContain(FEE_CEILING_ENV.maxFeePerGas);
    }
  });

  it('refuses a tip ceiling above the fee ceiling, and a ceiling of zero', () => {
    const r = thrown(() =>
      resolveFeeCeiling(
        {},
        { [FEE_CEILING_ENV.maxFeePerGas]: '10', [FEE_CEILING_ENV.maxPriorityFeePerGas]: '11' },
      ),
    );
    expect(r.code).toBe('E_INVALID_INPUT');
    expect(r.message).toContain(FEE_CEILING_ENV.maxPriorityFeePerGas);
    expect(thrown(() => resolveFeeCeiling({ maxFeePerGas: 0n }, {})).code).toBe('E_INVALID_INPUT');
  });

  it('is resolved when signing clients are created, and a bad one fails there', () => {
    const c = createFirnClients('http://127.0.0.1:1', KEY, deployment, {
      feeCeiling: { maxFeePerGas: 100n * GWEI },
    });
    expect(c.feeCeiling).toEqual({ maxFeePerGas: 100n * GWEI, maxPriorityFeePerGas: 10n * GWEI });
    expect(
      thrown(() =>
        createFirnClients('http://127.0.0.1:1', KEY, deployment, {
          feeCeiling: { maxFeePerGas: GWEI, maxPriorityFeePerGas: 2n * GWEI },
        }),
      ).code,
    ).toBe('E_INVALID_INPUT');
  });
});
