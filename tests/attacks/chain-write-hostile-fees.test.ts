import { type Address, parseAbi } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AnvilInstance, startAnvil } from '../../packages/chain/src/anvil.ts';
import { createFirnClients, type FirnClients } from '../../packages/chain/src/clients.ts';
import { writeContractAndWait } from '../../packages/chain/src/writeContractAndWait.ts';
import { deployRaw, placeholderDeployment, rewritingRpcProxy } from '../../packages/chain/test/rpcProxy.ts';

// Promise (decision 1461, brief): a hostile RPC reporting absurd fees must not make a node pay
// without limit. The write's fees are all filled from what the RPC says (eth_maxPriorityFeePerGas,
// the latest / pending block's base fee, eth_gasPrice) and signed with no ceiling; a proxy that
// relays the signed transaction to the real chain makes the account pay the tip it named. The
// tip is paid in full whatever the real base fee is.

const GROWING = '0x6016600c60003960166000f333435533600143015533600243015533600343015500';
const ABI = parseAbi(['function poke()']);

let anvil: AnvilInstance;
let honest: FirnClients;
let growing: Address;
let proxy: Awaited<ReturnType<typeof rewritingRpcProxy>> | undefined;

/** 100,000 gwei a gas: 100,000 times anvil's starting base fee. */
const ABSURD_TIP = 100_000n * 10n ** 9n;
/** What any sane ceiling allows a poke() to cost (its gas is about 90,000): 0.01 ETH. */
const SANE_COST = 10n ** 16n;

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 2 });
  honest = createFirnClients(anvil.rpcUrl, anvil.accounts[0]!.privateKey, placeholderDeployment(anvil), {
    pollingIntervalMs: 20,
  });
  growing = await deployRaw(honest, GROWING);
}, 30_000);

afterAll(async () => {
  proxy?.server.close();
  await anvil?.stop();
});

describe('a hostile RPC naming absurd fees', () => {
  it('does not make a write pay an absurd tip (the fees a write signs are bounded)', async () => {
    proxy = await rewritingRpcProxy(anvil.rpcUrl, (m) =>
      m.method === 'eth_maxPriorityFeePerGas'
        ? { jsonrpc: '2.0', id: m.id, result: `0x${ABSURD_TIP.toString(16)}` }
        : undefined,
    );
    const c = createFirnClients(proxy.url, anvil.accounts[1]!.privateKey, placeholderDeployment(anvil), {
      pollingIntervalMs: 20,
    });
    const who = anvil.accounts[1]!.address as Address;
    const before = await honest.public.getBalance({ address: who });
    let paid: bigint | undefined;
    let refused: unknown;
    try {
      const res = await writeContractAndWait(c, {
        address: growing,
        abi: ABI,
        functionName: 'poke',
        args: [],
      });
      paid = res.receipt.gasUsed * res.receipt.effectiveGasPrice;
    } catch (e) {
      refused = e;
    }
    const after = await honest.public.getBalance({ address: who });
    // Either refused, or mined at a sane price: never 100,000 gwei a gas on a chain at ~1 gwei.
    expect(before - after).toBeLessThan(SANE_COST);
    if (refused === undefined) expect(paid!).toBeLessThan(SANE_COST);
  });
});
