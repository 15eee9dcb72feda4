import { type Address, type Hex, parseAbi, toFunctionSelector } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AnvilInstance, startAnvil } from '../../packages/chain/src/anvil.ts';
import { ChainRevertedError } from '../../packages/chain/src/ChainRevertedError.ts';
import { createFirnClients, type FirnClients } from '../../packages/chain/src/clients.ts';
import { writeContractAndWait } from '../../packages/chain/src/writeContractAndWait.ts';
import {
  deployRaw,
  placeholderDeployment,
  rpcCall,
  sendReplacementAt,
} from '../../packages/chain/test/rpcProxy.ts';

// Promise (decision 1400, brief): a write never gets stuck; a base fee rising between the fee fill
// and inclusion does not leave the account's write queue wedged; a second process sending with the
// same key at the same time does not make a write silently lost, and errors are typed.

const GROWING = '0x6016600c60003960166000f333435533600143015533600243015533600343015500';
const ABI = parseAbi(['function poke()']);

/** One write of poke() to `address` through `c`. */
const poke = (c: FirnClients, address: Address) =>
  writeContractAndWait(c, { address, abi: ABI, functionName: 'poke', args: [] });

let anvil: AnvilInstance;
let clients: FirnClients;
let clients2: FirnClients;
let growing: Address;

const rpc = (method: string, params: unknown[]) => rpcCall(anvil.rpcUrl, method, params);

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

/** Waits (bounded, 2 s) until a transaction sits in the pool. */
async function untilPooled(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const st = (await rpc('txpool_status', [])) as { pending: string };
    if (Number(st.pending) > 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const started: AnvilInstance[] = [];

/** A fresh anvil with the test's clients and contract (a test that leaves a write waiting uses its own). */
async function fresh(): Promise<void> {
  anvil = await startAnvil({ accounts: 2 });
  started.push(anvil);
  clients = createFirnClients(anvil.rpcUrl, anvil.accounts[0]!.privateKey, placeholderDeployment(anvil), {
    pollingIntervalMs: 20,
  });
  // Another process or CLI holding the same key: it sends plain transactions, outside this
  // process's write queue.
  clients2 = createFirnClients(anvil.rpcUrl, anvil.accounts[0]!.privateKey, placeholderDeployment(anvil), {
    pollingIntervalMs: 20,
  });
  growing = await deployRaw(clients, GROWING);
}

beforeAll(fresh, 30_000);

afterAll(async () => {
  for (const a of started) await a.stop();
});

describe('chain writes under a base fee spike', () => {
  it('a base fee rising 10x before inclusion neither hangs the write nor wedges the next one', async () => {
    const latest = await clients.public.getBlock();
    await rpc('anvil_setNextBlockBaseFeePerGas', [`0x${(latest.baseFeePerGas! * 10n).toString(16)}`]);
    const first = await within(poke(clients, growing), 8_000);
    // Either mined, or a typed error naming the fee: never a write that waits forever.
    expect(first).not.toBe('hung');
    if (first !== 'hung' && 'err' in first) {
      expect((first.err as { code?: string }).code).toMatch(/^E_/);
      expect(String((first.err as Error).message)).toMatch(/fee|gas price|base/i);
    }
    const second = await within(poke(clients, growing), 8_000);
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
      const res = await within(poke(clients, growing), 8_000);
      expect(raced).toBe(true);
      expect(res).not.toBe('hung');
      if (res !== 'hung' && 'err' in res) throw res.err;
      expect(res !== 'hung' && 'ok' in res && res.ok.receipt.blockNumber).toBeGreaterThan(before);
    } finally {
      pub.getTransactionCount = original;
    }
  }, 30_000);
});

/** Deploys a runtime whose first call sets a flag and every later call reverts AlreadyDone(). */
function onceInitCode(): Hex {
  const sel = toFunctionSelector('AlreadyDone()').slice(2);
  const runtime = `600054600c57600160005500 5b63${sel}60e01b60005260046000fd`.replace(/ /g, '');
  const len = (runtime.length / 2).toString(16).padStart(2, '0');
  return `0x60${len}600c60003960${len}6000f3${runtime}` as Hex;
}

describe('a write that reverts on chain after a passing simulation', () => {
  it('names the custom error when another account took the path first in the same block', async () => {
    const ONCE_ABI = parseAbi(['function poke()', 'error AlreadyDone()']);
    const w = clients.wallet!;
    const dh = await w.sendTransaction({ data: onceInitCode(), account: w.account!, chain: null });
    const once = (await clients.public.waitForTransactionReceipt({ hash: dh })).contractAddress!;
    const other = createFirnClients(
      anvil.rpcUrl,
      anvil.accounts[1]!.privateKey,
      placeholderDeployment(anvil),
      {
        pollingIntervalMs: 20,
      },
    );
    await rpc('evm_setAutomine', [false]);
    try {
      // Another account's call, with a higher tip, waits in the pool: it is mined first.
      const ow = other.wallet!;
      await ow.sendTransaction({
        to: once,
        data: toFunctionSelector('poke()'),
        account: ow.account!,
        chain: null,
        gas: 100_000n,
        maxPriorityFeePerGas: 50_000_000_000n,
        maxFeePerGas: 100_000_000_000n,
      });
      const p = writeContractAndWait(clients, {
        address: once,
        abi: ONCE_ABI,
        functionName: 'poke',
        args: [],
      });
      const settled = p.then(
        () => undefined,
        (e: unknown) => e,
      );
      await new Promise((r) => setTimeout(r, 500));
      await rpc('evm_mine', []);
      const err = await within(settled, 8_000);
      expect(err).not.toBe('hung');
      const e = err !== 'hung' && 'ok' in err ? err.ok : undefined;
      expect(e).toBeInstanceOf(ChainRevertedError);
      expect((e as ChainRevertedError).errorName).toBe('AlreadyDone');
    } finally {
      await rpc('evm_setAutomine', [true]);
    }
  }, 30_000);
});

describe('a base fee rise while the write waits in the pool (interval mining)', () => {
  it('the write is mined or fails typed; it does not wait forever and wedge the account', async () => {
    await fresh();
    await rpc('evm_setAutomine', [false]);
    let p: Promise<{ ok: unknown } | { err: unknown } | 'hung'> | undefined;
    try {
      p = within(poke(clients, growing), 10_000);
      // Wait (bounded) until the write sits in the pool.
      await untilPooled();
      const head = await clients.public.getBlock();
      await rpc('anvil_setNextBlockBaseFeePerGas', [`0x${(head.baseFeePerGas! * 10n).toString(16)}`]);
      await rpc('evm_mine', []);
    } finally {
      await rpc('evm_setAutomine', [true]);
    }
    // Blocks keep coming (automine on, and one mined now).
    await rpc('evm_mine', []);
    const res = await p!;
    expect(res).not.toBe('hung');
    if (res !== 'hung' && 'err' in res) expect((res.err as { code?: string }).code).toMatch(/^E_/);
    const next = await within(poke(clients, growing), 10_000);
    expect(next).not.toBe('hung');
  }, 40_000);
});

describe('a write replaced in the pool by another process holding the same key', () => {
  it('does not resolve as a success with the receipt of the transaction that replaced it', async () => {
    await fresh();
    await rpc('evm_setAutomine', [false]);
    let p: Promise<{ ok: unknown } | { err: unknown } | 'hung'> | undefined;
    try {
      const nonce = await clients.public.getTransactionCount({
        address: anvil.accounts[0]!.address,
        blockTag: 'pending',
      });
      p = within(poke(clients, growing), 10_000);
      await untilPooled();
      // The other process (same key, same nonce, higher fees): a plain transfer to itself.
      await sendReplacementAt(clients2, nonce);
      await rpc('evm_mine', []);
    } finally {
      await rpc('evm_setAutomine', [true]);
    }
    const res = await p!;
    expect(res).not.toBe('hung');
    if (res !== 'hung' && 'ok' in res) {
      // A success must be the write's own transaction, to the contract it called.
      const r = (res.ok as { hash: string; receipt: { transactionHash: string; to: string | null } }).receipt;
      expect(r.transactionHash).toBe((res.ok as { hash: string }).hash);
      expect(r.to?.toLowerCase()).toBe(growing.toLowerCase());
    }
  }, 40_000);
});
