import { type Address, parseAbi } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AnvilInstance, startAnvil } from '../../packages/chain/src/anvil.ts';
import { createFirnClients, type FirnClients } from '../../packages/chain/src/clients.ts';
import { writeContractAndWait } from '../../packages/chain/src/writeContractAndWait.ts';
import { deployRaw, placeholderDeployment, rpcCall } from '../../packages/chain/test/rpcProxy.ts';

// Promise (decision 1461, brief): concurrent writes from two processes holding the same key stay
// correct: a write whose nonce the other process took is sent again, not lost. On a live chain
// the other process's transaction waits in the pool (not mined yet) when ours goes out at the
// same nonce; the pool refuses ours as an underpriced replacement, which is neither
// NonceTooLowError nor FeeCapTooLowError.

const GROWING = '0x6016600c60003960166000f333435533600143015533600243015533600343015500';
const ABI = parseAbi(['function poke()']);

let anvil: AnvilInstance;
let clients: FirnClients;
let clients2: FirnClients;
let growing: Address;

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 2 });
  clients = createFirnClients(anvil.rpcUrl, anvil.accounts[0]!.privateKey, placeholderDeployment(anvil), {
    pollingIntervalMs: 20,
  });
  clients2 = createFirnClients(anvil.rpcUrl, anvil.accounts[0]!.privateKey, placeholderDeployment(anvil), {
    pollingIntervalMs: 20,
  });
  growing = await deployRaw(clients, GROWING);
}, 30_000);
afterAll(async () => {
  await anvil?.stop();
});

describe('two processes with one key, the other one pooled first at the same nonce', () => {
  it('the write is still mined (at the next nonce), not refused as an underpriced replacement', async () => {
    await rpcCall(anvil.rpcUrl, 'evm_setAutomine', [false]);
    const pub = clients.public as unknown as { getTransactionCount: (a: unknown) => Promise<number> };
    const original = pub.getTransactionCount.bind(pub);
    let raced = false;
    pub.getTransactionCount = async (a: unknown) => {
      const n = await original(a);
      if (!raced) {
        raced = true;
        // The other process sends at the same nonce right after this write read it; it is pooled.
        const w = clients2.wallet!;
        await w.sendTransaction({ to: growing, data: '0x', account: w.account!, chain: null, nonce: n });
      }
      return n;
    };
    // Blocks come by themselves meanwhile, as on a live chain (bounded: 40 blocks).
    let mining = true;
    const miner = (async () => {
      for (let i = 0; i < 40 && mining; i++) {
        await new Promise((r) => setTimeout(r, 250));
        await rpcCall(anvil.rpcUrl, 'evm_mine', []);
      }
    })();
    try {
      const res = await writeContractAndWait(clients, {
        address: growing,
        abi: ABI,
        functionName: 'poke',
        args: [],
      }).then(
        (r) => `mined ${r.receipt.status}`,
        (e: unknown) => `refused ${(e as { code?: string }).code}: ${(e as Error).message.split('\n')[0]}`,
      );
      expect(raced).toBe(true);
      expect(res).toBe('mined success');
    } finally {
      mining = false;
      await miner;
      pub.getTransactionCount = original;
      await rpcCall(anvil.rpcUrl, 'evm_setAutomine', [true]);
    }
  }, 30_000);
});
