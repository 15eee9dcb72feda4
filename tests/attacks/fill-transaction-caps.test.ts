import { parseTransaction, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devnetAccounts } from '../../packages/chain/src/anvil.ts';
import { createFirnClients, resolveFeeCeiling } from '../../packages/chain/src/clients.ts';
import { deployFirn } from '../../packages/chain/src/deploy.ts';
import { MAX_WRITE_GAS } from '../../packages/chain/src/writeContractAndWait.ts';
import { nudgeChain } from '../../packages/client/src/marketJob.ts';
import { type LyingFeeRpc, startLyingFeeRpc } from '../helpers/lyingFeeRpc.ts';

// Decisions 1470 and 1540: nothing is signed above the fee ceiling or MAX_WRITE_GAS (30M), whatever
// the RPC says. deployFirn and nudgeChain (the block-making transfer of `firn job reclaim`) hand
// their capped gas and fees to viem's deployContract / sendTransaction without a nonce, so viem
// first asks the RPC to fill the request (eth_fillTransaction). An answer marked as co-signed by a
// fee payer (feePayerSignature) makes viem take the RPC's gas and fees over the ones passed.
const KEY = devnetAccounts(1)[0]!.privateKey as Hex;
const GWEI = 10n ** 9n;
let rpc: LyingFeeRpc;

beforeAll(async () => {
  rpc = await startLyingFeeRpc({
    estimateGas: 3_000_000n,
    maxPriorityFeePerGas: GWEI,
    fillTransaction: {
      gas: 1_000_000_000n,
      maxFeePerGas: 100_000n * GWEI,
      maxPriorityFeePerGas: 50_000n * GWEI,
    },
  });
});
afterAll(() => rpc?.close());

function expectWithinCaps(raws: Hex[]): void {
  const ceiling = resolveFeeCeiling({}, {});
  for (const raw of raws) {
    const tx = parseTransaction(raw);
    expect(tx.gas ?? 0n).toBeLessThanOrEqual(MAX_WRITE_GAS);
    expect(tx.maxPriorityFeePerGas ?? 0n).toBeLessThanOrEqual(ceiling.maxPriorityFeePerGas);
    expect(tx.maxFeePerGas ?? tx.gasPrice ?? 0n).toBeLessThanOrEqual(ceiling.maxFeePerGas);
  }
}

describe('an RPC answering eth_fillTransaction with its own gas and fees', () => {
  it('a deployment signs no gas limit over 30M nor a fee over the ceiling', async () => {
    rpc.sent.length = 0;
    await deployFirn({
      rpcUrl: rpc.url,
      deployerKey: KEY,
      profile: 'devnet',
      governanceDelay: 0,
      minNodeStake: 1n,
      minVerifierStake: 1n,
      unbondingPeriod: 60,
      challengeWindow: 60,
      slashAmount: 1n,
      epochLength: 60,
      answerWindow: 30,
      pollingIntervalMs: 20,
    } as Parameters<typeof deployFirn>[0]).catch(() => undefined);
    expectWithinCaps(rpc.sent);
  }, 20_000);

  it('the nudge before a reclaim signs no gas limit over 21,000 nor a fee over the ceiling', async () => {
    rpc.sent.length = 0;
    const zero = `0x${'00'.repeat(20)}` as Hex;
    const clients = createFirnClients(rpc.url, KEY, {
      chainId: 31337,
      registry: zero,
      jobMarket: zero,
    } as unknown as Parameters<typeof createFirnClients>[2]);
    await nudgeChain(clients, 1000).catch(() => undefined);
    expect(rpc.sent.length).toBeLessThanOrEqual(1);
    for (const raw of rpc.sent) expect(parseTransaction(raw).gas).toBe(21_000n);
    expectWithinCaps(rpc.sent);
  }, 20_000);
});
