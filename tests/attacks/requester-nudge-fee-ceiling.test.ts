import { parseTransaction, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devnetAccounts } from '../../packages/chain/src/anvil.ts';
import { type LyingFeeRpc, startLyingFeeRpc } from '../helpers/lyingFeeRpc.ts';
import { createFirnClients } from '../../packages/chain/src/clients.ts';
import { nudgeChain } from '../../packages/client/src/marketJob.ts';

// Decision 1470: every fee a write signs is bounded by the client's ceiling, whatever the RPC says.
// The requester's nudge (nudgeChain: a zero-value transfer to itself, sent up to 3 times per wait
// for a lost node, decision 1475) goes through viem's sendTransaction, which fills its fees from
// the RPC. A hostile RPC names a tip of 100,000 gwei (base fee 1 gwei, an honest 21,000 gas).
// The devnet mnemonic's first account (public keys; the fake RPC never reaches a real chain).
const KEY = devnetAccounts(1)[0]!.privateKey;
const GWEI = 10n ** 9n;
let rpc: LyingFeeRpc;

beforeAll(async () => {
  rpc = await startLyingFeeRpc({ estimateGas: 21_000n, maxPriorityFeePerGas: 100_000n * GWEI });
});
afterAll(() => rpc?.close());

describe("the requester's nudge under a lying RPC", () => {
  it('signs no fee above the client fee ceiling', async () => {
    const clients = createFirnClients(
      rpc.url,
      KEY as Hex,
      {
        chainId: 31337,
        registry: '0x0000000000000000000000000000000000000001',
        verifierSet: '0x0000000000000000000000000000000000000002',
        jobMarket: '0x0000000000000000000000000000000000000003',
        dataLedger: '0x0000000000000000000000000000000000000004',
        deployBlock: 0n,
      },
      { pollingIntervalMs: 20 },
    );
    await nudgeChain(clients, 1_000).catch(() => undefined);
    for (const raw of rpc.sent) {
      const tx = parseTransaction(raw);
      expect(tx.maxPriorityFeePerGas ?? 0n).toBeLessThanOrEqual(clients.feeCeiling!.maxPriorityFeePerGas);
      expect(tx.maxFeePerGas ?? tx.gasPrice ?? 0n).toBeLessThanOrEqual(clients.feeCeiling!.maxFeePerGas);
    }
  }, 20_000);
});
