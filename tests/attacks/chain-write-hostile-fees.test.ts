import { isFirnError } from '@firn/core';
import { type Address, type Hex, parseAbi, parseTransaction } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AnvilInstance, startAnvil } from '../../packages/chain/src/anvil.ts';
import {
  createFirnClients,
  DEFAULT_MAX_FEE_PER_GAS,
  type FeeCeiling,
  type FirnClients,
} from '../../packages/chain/src/clients.ts';
import { FeeCeilingError, writeContractAndWait } from '../../packages/chain/src/writeContractAndWait.ts';
import {
  deployRaw,
  placeholderDeployment,
  type RpcMessage,
  rewritingRpcProxy,
  rpcCall,
} from '../../packages/chain/test/rpcProxy.ts';

// Promise (decision 1461, brief): a hostile RPC reporting absurd fees must not make a node pay
// without limit. The write's fees are all filled from what the RPC says (eth_maxPriorityFeePerGas,
// the latest / pending block's base fee, eth_gasPrice) and signed with no ceiling; a proxy that
// relays the signed transaction to the real chain makes the account pay the tip it named. The
// tip is paid in full whatever the real base fee is.
//
// Every case below lies about one fee at one stage of a write (the first send, the retry after the
// node refused the fee cap, a re-price of a write waiting in the pool, a legacy chain's gas price)
// and asserts that no transaction the key signed carries a fee above the ceiling (each
// eth_sendRawTransaction through the proxy is decoded) and that the write fails typed.

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

/** The signed transactions that went out through a proxy (eth_sendRawTransaction), decoded. */
function signedIn(seen: RpcMessage[]) {
  return seen
    .filter((m) => m.method === 'eth_sendRawTransaction')
    .map((m) => parseTransaction((m.params as Hex[])[0]!));
}

/** The default ceiling of clients made without feeCeiling nor the FIRN_* variables. */
const CEILING: FeeCeiling = {
  maxFeePerGas: DEFAULT_MAX_FEE_PER_GAS,
  maxPriorityFeePerGas: DEFAULT_MAX_FEE_PER_GAS / 10n,
};

/** No fee of any transaction in `seen` above `ceiling`. */
function expectAllWithin(seen: RpcMessage[], ceiling: FeeCeiling = CEILING): void {
  for (const tx of signedIn(seen)) {
    if (tx.gasPrice !== undefined) expect(tx.gasPrice).toBeLessThanOrEqual(ceiling.maxFeePerGas);
    if (tx.maxFeePerGas !== undefined) expect(tx.maxFeePerGas).toBeLessThanOrEqual(ceiling.maxFeePerGas);
    if (tx.maxPriorityFeePerGas !== undefined)
      expect(tx.maxPriorityFeePerGas).toBeLessThanOrEqual(ceiling.maxPriorityFeePerGas);
  }
}

/** The latest/pending block as the chain has it, with its base fee replaced (a lying RPC). */
async function blockWithBaseFee(rpcUrl: string, m: RpcMessage, baseFee: bigint): Promise<unknown> {
  const real = (await rpcCall(rpcUrl, 'eth_getBlockByNumber', m.params ?? [])) as Record<string, unknown>;
  return { jsonrpc: '2.0', id: m.id, result: { ...real, baseFeePerGas: `0x${baseFee.toString(16)}` } };
}

/** What a write through `c` did: its error (undefined when it was mined). */
async function outcome(c: FirnClients, target: Address): Promise<unknown> {
  try {
    await writeContractAndWait(c, { address: target, abi: ABI, functionName: 'poke', args: [] });
    return undefined;
  } catch (e) {
    return e;
  }
}

/** A typed refusal naming `fee`, its ceiling and the setting that raises it. */
function expectRefused(e: unknown, fee: FeeCeilingError['fee']): void {
  expect(e).toBeInstanceOf(FeeCeilingError);
  expect(isFirnError(e) && e.code).toBe('E_CHAIN');
  const err = e as FeeCeilingError;
  expect(err.fee).toBe(fee);
  expect(err.details?.['fee']).toBe(fee);
  expect(err.wanted).toBeGreaterThan(err.ceiling);
  expect(err.message).toMatch(
    fee === 'maxPriorityFeePerGas' ? /FIRN_MAX_PRIORITY_FEE_PER_GAS_GWEI/ : /FIRN_MAX_FEE_PER_GAS_GWEI/,
  );
  expect(err.message).toMatch(/gwei/);
}

describe('a hostile RPC naming absurd fees', () => {
  it('does not make a write pay an absurd tip (the fees a write signs are bounded)', async () => {
    const seen: RpcMessage[] = [];
    proxy = await rewritingRpcProxy(anvil.rpcUrl, (m) => {
      seen.push(m);
      return m.method === 'eth_maxPriorityFeePerGas'
        ? { jsonrpc: '2.0', id: m.id, result: `0x${ABSURD_TIP.toString(16)}` }
        : undefined;
    });
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
    // Refused before signing: typed, naming the tip and its ceiling; nothing went out.
    expectRefused(refused, 'maxPriorityFeePerGas');
    expect(signedIn(seen)).toEqual([]);
    expect(before - after).toBe(0n);
  });

  it('refuses a write when the latest block the RPC shows has an absurd base fee (nothing signed)', async () => {
    const seen: RpcMessage[] = [];
    const liar = await rewritingRpcProxy(anvil.rpcUrl, (m) => {
      seen.push(m);
      return m.method === 'eth_getBlockByNumber' && (m.params ?? [])[0] === 'latest'
        ? blockWithBaseFee(anvil.rpcUrl, m, ABSURD_TIP)
        : undefined;
    });
    try {
      const c = createFirnClients(liar.url, anvil.accounts[1]!.privateKey, placeholderDeployment(anvil), {
        pollingIntervalMs: 20,
      });
      expectRefused(await outcome(c, growing), 'maxFeePerGas');
      expect(signedIn(seen)).toEqual([]);
    } finally {
      liar.server.close();
    }
  });

  it('refuses the retry after the node refused the fee cap when the pending base fee the RPC shows is absurd', async () => {
    // The first send is priced (lying) at 1 wei of base fee and 1 wei of tip: the node refuses it
    // as below its base fee; the retry asks the pending block, whose base fee the RPC inflates.
    const seen: RpcMessage[] = [];
    const liar = await rewritingRpcProxy(anvil.rpcUrl, (m) => {
      seen.push(m);
      if (m.method === 'eth_maxPriorityFeePerGas') return { jsonrpc: '2.0', id: m.id, result: '0x1' };
      if (m.method !== 'eth_getBlockByNumber') return undefined;
      const tag = (m.params ?? [])[0];
      if (tag === 'latest') return blockWithBaseFee(anvil.rpcUrl, m, 1n);
      if (tag === 'pending') return blockWithBaseFee(anvil.rpcUrl, m, ABSURD_TIP);
      return undefined;
    });
    try {
      const c = createFirnClients(liar.url, anvil.accounts[1]!.privateKey, placeholderDeployment(anvil), {
        pollingIntervalMs: 20,
      });
      const e = await outcome(c, growing);
      expectRefused(e, 'maxFeePerGas');
      expect((e as FeeCeilingError).message).toMatch(/refused the fee cap/);
      // Only the first, refused, send went out; the retry was never signed.
      expect(signedIn(seen)).toHaveLength(1);
      expectAllWithin(seen);
    } finally {
      liar.server.close();
    }
  });

  it('does not re-price a write waiting in the pool above the ceiling when the pending base fee the RPC shows is absurd', async () => {
    const own = await startAnvil({ accounts: 1 });
    const seen: RpcMessage[] = [];
    let lie = false;
    const liar = await rewritingRpcProxy(own.rpcUrl, (m) => {
      seen.push(m);
      return lie && m.method === 'eth_getBlockByNumber' && (m.params ?? [])[0] === 'pending'
        ? blockWithBaseFee(own.rpcUrl, m, ABSURD_TIP)
        : undefined;
    });
    try {
      const c = createFirnClients(liar.url, own.accounts[0]!.privateKey, placeholderDeployment(own), {
        pollingIntervalMs: 20,
        receiptWait: { roundMs: 200, rounds: 3 },
      });
      const target = await deployRaw(c, GROWING);
      await rpcCall(own.rpcUrl, 'evm_setAutomine', [false]);
      seen.length = 0;
      lie = true;
      const e = await outcome(c, target);
      expectRefused(e, 'maxFeePerGas');
      // It says the one sent stays in the pool (it may still be mined).
      expect((e as FeeCeilingError).message).toMatch(/stays in the pool/);
      expect(signedIn(seen)).toHaveLength(1);
      expectAllWithin(seen);
    } finally {
      liar.server.close();
      await own.stop();
    }
  }, 30_000);

  it('refuses a legacy write when the RPC names an absurd gas price (a chain without base fees)', async () => {
    const old = await startAnvil({ accounts: 1, hardfork: 'berlin' });
    const seen: RpcMessage[] = [];
    let lie = false;
    const liar = await rewritingRpcProxy(old.rpcUrl, (m) => {
      seen.push(m);
      return lie && m.method === 'eth_gasPrice'
        ? { jsonrpc: '2.0', id: m.id, result: `0x${ABSURD_TIP.toString(16)}` }
        : undefined;
    });
    try {
      const c = createFirnClients(liar.url, old.accounts[0]!.privateKey, placeholderDeployment(old), {
        pollingIntervalMs: 20,
      });
      const target = await deployRaw(c, GROWING, true);
      seen.length = 0;
      lie = true;
      expectRefused(await outcome(c, target), 'gasPrice');
      expect(signedIn(seen)).toEqual([]);
    } finally {
      liar.server.close();
      await old.stop();
    }
  }, 30_000);

  it('trims the fee cap to an operator’s lower ceiling when the chain’s base fee and tip fit under it, and the write is mined', async () => {
    // Exact base fee: the next block's is set, then mined.
    await rpcCall(anvil.rpcUrl, 'anvil_setNextBlockBaseFeePerGas', [`0x${(10n ** 9n).toString(16)}`]);
    await rpcCall(anvil.rpcUrl, 'evm_mine', []);
    const base = (await honest.public.getBlock()).baseFeePerGas!;
    const tip = BigInt((await rpcCall(anvil.rpcUrl, 'eth_maxPriorityFeePerGas', [])) as Hex);
    // Below what the write would ask (1.2 x base + tip), above what it needs (base + tip).
    const ceiling: FeeCeiling = { maxFeePerGas: base + tip + base / 10n, maxPriorityFeePerGas: tip };
    const seen: RpcMessage[] = [];
    const rec = await rewritingRpcProxy(anvil.rpcUrl, (m) => {
      seen.push(m);
      return undefined;
    });
    try {
      const c = createFirnClients(rec.url, anvil.accounts[1]!.privateKey, placeholderDeployment(anvil), {
        pollingIntervalMs: 20,
        feeCeiling: ceiling,
      });
      const res = await writeContractAndWait(c, {
        address: growing,
        abi: ABI,
        functionName: 'poke',
        args: [],
      });
      expect(res.receipt.status).toBe('success');
      const [tx] = signedIn(seen);
      expect(tx!.maxFeePerGas).toBe(ceiling.maxFeePerGas);
      expect(tx!.maxPriorityFeePerGas).toBe(tip);
      expectAllWithin(seen, ceiling);
      // And a ceiling under what the chain needs refuses it, naming the fee cap.
      const tight = createFirnClients(rec.url, anvil.accounts[1]!.privateKey, placeholderDeployment(anvil), {
        pollingIntervalMs: 20,
        feeCeiling: { maxFeePerGas: tip, maxPriorityFeePerGas: tip },
      });
      seen.length = 0;
      expectRefused(await outcome(tight, growing), 'maxFeePerGas');
      expect(signedIn(seen)).toEqual([]);
    } finally {
      rec.server.close();
    }
  });
});
