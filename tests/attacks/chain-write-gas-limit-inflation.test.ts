import { parseAbi, parseTransaction, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devnetAccounts } from '../../packages/chain/src/anvil.ts';
import { type LyingFeeRpc, startLyingFeeRpc } from '../helpers/lyingFeeRpc.ts';
import { createFirnClients } from '../../packages/chain/src/clients.ts';
import { writeContractAndWait } from '../../packages/chain/src/writeContractAndWait.ts';

// A hostile RPC on 127.0.0.1 that answers honestly about fees (1 gwei base, 1 gwei tip) but names a
// gas estimate of 1e9 for a write that needs ~30,000. Decision 1470 promises a lying RPC can make
// a write cost at most a bounded amount ("a 300,000-gas write costs at most 0.15 ETH"); a
// transaction's worst-case cost is gas limit x maxFeePerGas, and the gas limit comes from
// eth_estimateGas unbounded.
// The devnet mnemonic's first account (public keys; the fake RPC never reaches a real chain).
const KEY = devnetAccounts(1)[0]!.privateKey;
const GWEI = 10n ** 9n;
let rpc: LyingFeeRpc;

beforeAll(async () => {
  rpc = await startLyingFeeRpc({ estimateGas: 1_000_000_000n, maxPriorityFeePerGas: GWEI });
});
afterAll(() => rpc?.close());

describe('a write under a lying eth_estimateGas', () => {
  it('signs no transaction whose worst-case cost (gas x maxFeePerGas) exceeds a bounded amount', async () => {
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
    const err = await writeContractAndWait(clients, {
      address: '0x0000000000000000000000000000000000000005',
      abi: parseAbi(['function poke()']),
      functionName: 'poke',
      args: [],
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    // Either refused before signing, or signed within the bound.
    expect(err).toBeDefined();
    for (const raw of rpc.sent) {
      const tx = parseTransaction(raw);
      const worst = (tx.gas ?? 0n) * (tx.maxFeePerGas ?? tx.gasPrice ?? 0n);
      // At most a block's worth of gas (30M) at the fee ceiling (500 gwei): 15 ETH; the signed
      // transaction may not authorise more than that on any chain.
      expect(tx.gas).toBeLessThanOrEqual(30_000_000n);
      expect(worst).toBeLessThanOrEqual(30_000_000n * 500n * GWEI);
    }
  }, 20_000);
});
