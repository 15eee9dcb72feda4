import { type Address, type Hex, parseAbi } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AnvilInstance, startAnvil } from '../../packages/chain/src/anvil.ts';
import { createFirnClients, type FirnClients } from '../../packages/chain/src/clients.ts';
import type { FirnDeployment } from '../../packages/chain/src/types.ts';
import { writeContractAndWait } from '../../packages/chain/src/writeContractAndWait.ts';

// Promise (decision 1400, brief): a write never gets stuck; a base fee rising between the fee fill
// and inclusion does not leave the account's write queue wedged; a second process sending with the
// same key at the same time does not make a write silently lost, and errors are typed.

const GROWING = '0x6016600c60003960166000f333435533600143015533600243015533600343015500';
const ABI = parseAbi(['function poke()']);

let anvil: AnvilInstance;
let clients: FirnClients;
let clients2: FirnClients;
let growing: Address;

function deploymentOf(a: AnvilInstance): FirnDeployment {
  return {
    chainId: a.chainId,
    registry: '0x0000000000000000000000000000000000000001',
    verifierSet: '0x0000000000000000000000000000000000000002',
    jobMarket: '0x0000000000000000000000000000000000000003',
    dataLedger: '0x0000000000000000000000000000000000000004',
    deployBlock: 0n,
  };
}

async function rpc(method: string, params: unknown[]): Promise<unknown> {
  const r = await fetch(anvil.rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return ((await r.json()) as { result?: unknown; error?: unknown }).result;
}

/** Settles within ms or reports 'hung'. */
function within<T>(p: Promise<T>, ms: number): Promise<{ ok: T } | { err: unknown } | 'hung'> {
  return Promise.race([
    p.then(
      (ok) => ({ ok }),
      (err) => ({ err }),
    ),
    new Promise<'hung'>((r) => setTimeout(() => r('hung'), ms).unref()),
  ]);
}

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 1 });
  clients = createFirnClients(anvil.rpcUrl, anvil.accounts[0]!.privateKey, deploymentOf(anvil), {
    pollingIntervalMs: 20,
  });
  // Another process or CLI holding the same key: it sends plain transactions, outside this
  // process's write queue.
  clients2 = createFirnClients(anvil.rpcUrl, anvil.accounts[0]!.privateKey, deploymentOf(anvil), {
    pollingIntervalMs: 20,
  });
  const w = clients.wallet!;
  const hash = await w.sendTransaction({ data: GROWING as Hex, account: w.account!, chain: null });
  growing = (await clients.public.waitForTransactionReceipt({ hash })).contractAddress!;
}, 30_000);

afterAll(async () => {
  await anvil?.stop();
});

describe('chain writes under a base fee spike', () => {
  it('a base fee rising 10x before inclusion neither hangs the write nor wedges the next one', async () => {
    const latest = await clients.public.getBlock();
    await rpc('anvil_setNextBlockBaseFeePerGas', [`0x${(latest.baseFeePerGas! * 10n).toString(16)}`]);
    const first = await within(
      writeContractAndWait(clients, { address: growing, abi: ABI, functionName: 'poke', args: [] }),
      8_000,
    );
    // Either mined, or a typed error naming the fee: never a write that waits forever.
    expect(first).not.toBe('hung');
    if (first !== 'hung' && 'err' in first) {
      expect((first.err as { code?: string }).code).toMatch(/^E_/);
      expect(String((first.err as Error).message)).toMatch(/fee|gas price|base/i);
    }
    const second = await within(
      writeContractAndWait(clients, { address: growing, abi: ABI, functionName: 'poke', args: [] }),
      8_000,
    );
    expect(second).not.toBe('hung');
    expect(second !== 'hung' && 'ok' in second && second.ok.receipt.status).toBe('success');
  }, 30_000);
});

describe('chain writes racing another process that holds the same key', () => {
  it('a write whose nonce another sender took in the meantime is still mined, not lost', async () => {
    // The other process (a CLI with the same key) sends right after this write read its nonce.
    const pub = clients.public as unknown as { getTransactionCount: (a: unknown) => Promise<number> };
    const original = pub.getTransactionCount.bind(pub);
    let raced = false;
    pub.getTransactionCount = async (a: unknown) => {
      const n = await original(a);
      if (!raced) {
        raced = true;
        const w = clients2.wallet!;
        const h = await w.sendTransaction({ to: growing, data: '0x', account: w.account!, chain: null });
        await clients2.public.waitForTransactionReceipt({ hash: h });
      }
      return n;
    };
    try {
      const before = await clients.public.getBlockNumber();
      const res = await within(
        writeContractAndWait(clients, { address: growing, abi: ABI, functionName: 'poke', args: [] }),
        8_000,
      );
      expect(raced).toBe(true);
      expect(res).not.toBe('hung');
      if (res !== 'hung' && 'err' in res) throw res.err;
      expect(res !== 'hung' && 'ok' in res && res.ok.receipt.blockNumber).toBeGreaterThan(before);
    } finally {
      pub.getTransactionCount = original;
    }
  }, 30_000);
});
