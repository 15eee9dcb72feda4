import type { FirnDeployment } from '@firn/chain';
import type { Hex } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { firstPartyNodeChoice, type ResolvedChain } from './chainArgs.ts';

const deployment = { chainId: 31337, deployBlock: 0n } as FirnDeployment;
const M = `0x${'ab'.repeat(32)}` as Hex;
const chain = (devnet?: Record<string, unknown>): ResolvedChain => ({
  rpcUrl: 'http://127.0.0.1:8545',
  deployment,
  ...(devnet ? { devnet } : {}),
});

describe('firstPartyNodeChoice (firn infer, firn train)', () => {
  it("picks only nodes on the devnet's first-party image when no --node is named", () => {
    expect(firstPartyNodeChoice(chain({ measurement: M }), undefined)).toEqual({
      firstPartyMeasurements: [M],
    });
  });
  it('adds nothing when --node names the node, or the chain names no first-party measurement', () => {
    expect(firstPartyNodeChoice(chain({ measurement: M }), 'http://127.0.0.1:9000')).toEqual({});
    expect(firstPartyNodeChoice(chain(), undefined)).toEqual({});
    expect(firstPartyNodeChoice(chain({ measurement: '' }), undefined)).toEqual({});
    expect(firstPartyNodeChoice(chain({ measurement: 7 }), undefined)).toEqual({});
  });
});
