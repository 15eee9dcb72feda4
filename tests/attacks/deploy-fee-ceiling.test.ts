import { parseTransaction, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devnetAccounts } from '../../packages/chain/src/anvil.ts';
import { type LyingFeeRpc, startLyingFeeRpc } from '../helpers/lyingFeeRpc.ts';
import { deployFirn } from '../../packages/chain/src/deploy.ts';
import { resolveFeeCeiling } from '../../packages/chain/src/clients.ts';

// Decision 1470: "the node, the verifier and every CLI command" sign no fee above the ceiling,
// whatever the RPC says. deployFirn (firn deploy) sends its contract creations through viem's
// deployContract, which fills fees and gas from the RPC. A hostile RPC names a tip of 100,000 gwei:
// a creation of a few million gas would pay hundreds of ETH of tip.
// The devnet mnemonic's first account (public keys; the fake RPC never reaches a real chain).
const KEY = devnetAccounts(1)[0]!.privateKey;
const GWEI = 10n ** 9n;
let rpc: LyingFeeRpc;

beforeAll(async () => {
  rpc = await startLyingFeeRpc({ estimateGas: 3_000_000n, maxPriorityFeePerGas: 100_000n * GWEI });
});
afterAll(() => rpc?.close());

describe('a deployment under a lying RPC', () => {
  it('signs no fee above the fee ceiling', async () => {
    await deployFirn({
      rpcUrl: rpc.url,
      deployerKey: KEY as Hex,
      profile: 'devnet',
      governanceDelay: 0,
      minNodeStake: 1n,
      minVerifierStake: 1n,
      unbondingPeriod: 60,
      challengeWindow: 60,
      slashAmount: 1n,
      epochLength: 60,
      answerWindow: 60,
      pollingIntervalMs: 20,
    } as Parameters<typeof deployFirn>[0]).catch(() => undefined);
    const ceiling = resolveFeeCeiling({}, {});
    for (const raw of rpc.sent) {
      const tx = parseTransaction(raw);
      expect(tx.maxPriorityFeePerGas ?? 0n).toBeLessThanOrEqual(ceiling.maxPriorityFeePerGas);
      expect(tx.maxFeePerGas ?? tx.gasPrice ?? 0n).toBeLessThanOrEqual(ceiling.maxFeePerGas);
    }
  }, 20_000);
});
