import { isFirnError } from '@firn/core';
import { type Address, type Hex, parseAbi } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AnvilInstance, startAnvil } from './anvil.ts';
import { ChainRevertedError } from './ChainRevertedError.ts';
import { createFirnClients, type FirnClients } from './clients.ts';
import { writeContractAndWait } from './writeContractAndWait.ts';
import {
  deployRaw,
  placeholderDeployment,
  type RecordedCall,
  recordingRpcProxy,
  rewritingRpcProxy,
  rpcCall,
  sendReplacementAt,
} from '../test/rpcProxy.ts';

// A real anvil behind a proxy that records every JSON-RPC request. anvil answers a request on the
// 'pending' block (eth_fillTransaction, eth_estimateGas or eth_call without a block or with
// 'pending') by building that block on a copy of its whole state, so such a request costs in
// proportion to everything the chain holds: at 20,000 storage slots one took 11-14 ms of anvil's
// CPU against 0.6-1.6 ms for the same request at 'latest' (decision 1400). A write must make none.

/** Deploys a runtime that stores CALLER at slots NUMBER to NUMBER + 3 (a state that grows). */
const GROWING = '0x6016600c60003960166000f333435533600143015533600243015533600343015500';
/** Deploys a runtime that always reverts. */
const REVERTS = '0x6005600c60003960056000f360006000fd';
const ABI = parseAbi(['function poke()']);

/** One write of poke() to `address` through `c`. */
const poke = (c: FirnClients, address: Address) =>
  writeContractAndWait(c, { address, abi: ABI, functionName: 'poke', args: [] });

let anvil: AnvilInstance;
let proxy: Awaited<ReturnType<typeof recordingRpcProxy>>;
let clients: FirnClients;
let growing: Address;
let reverts: Address;

/** The requests of `calls` that anvil answers on the 'pending' block. */
function onPending(calls: RecordedCall[]) {
  return calls.filter(
    (c) =>
      c.method === 'eth_fillTransaction' ||
      ((c.method === 'eth_estimateGas' || c.method === 'eth_call' || c.method === 'eth_createAccessList') &&
        (c.params[1] === undefined || c.params[1] === 'pending')),
  );
}

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 2 });
  proxy = await recordingRpcProxy(anvil.rpcUrl);
  // No firn contract is used here: the clients need a deployment only for the chain id.
  clients = createFirnClients(proxy.url, anvil.accounts[0]!.privateKey, placeholderDeployment(anvil), {
    pollingIntervalMs: 20,
  });
  growing = await deployRaw(clients, GROWING);
  reverts = await deployRaw(clients, REVERTS);
}, 30_000);

afterAll(async () => {
  proxy?.server.close();
  await anvil?.stop();
});

describe('writeContractAndWait', () => {
  it('sends a write with no request on the pending block, and it is mined with head-room over the estimate', async () => {
    proxy.calls.length = 0;
    const res = await poke(clients, growing);
    expect(res.receipt.status).toBe('success');
    expect(onPending(proxy.calls)).toEqual([]);
    const estimate = proxy.calls.find((c) => c.method === 'eth_estimateGas');
    expect(estimate?.params[1]).toBe('latest');
    // The bounded receipt wait costs nothing on a normal write: no round check was made.
    expect(proxy.calls.filter((c) => c.method === 'eth_getTransactionByHash')).toEqual([]);
    expect(
      proxy.calls.filter((c) => c.method === 'eth_getTransactionCount' && c.params[1] === 'latest'),
    ).toEqual([]);
    const tx = await clients.public.getTransaction({ hash: res.hash });
    expect(tx.gas).toBeGreaterThan(res.receipt.gasUsed + 50_000n - 1n);
    expect(tx.type).toBe('eip1559');
    expect(tx.chainId).toBe(anvil.chainId);
  });

  // Decision 1760: the hash a write will be known by is handed to the caller before the RPC sees
  // the transaction, so a send whose answer is lost can still be found.
  it('names each signed hash before sending it (the hash mined), and sends nothing when that call throws', async () => {
    proxy.calls.length = 0;
    const seen: { hash: Hex; sendsBefore: number }[] = [];
    const res = await writeContractAndWait(clients, {
      address: growing,
      abi: ABI,
      functionName: 'poke',
      args: [],
      onSigned: (hash) =>
        seen.push({
          hash,
          sendsBefore: proxy.calls.filter((c) => c.method === 'eth_sendRawTransaction').length,
        }),
    });
    expect(seen).toEqual([{ hash: res.hash, sendsBefore: 0 }]);
    proxy.calls.length = 0;
    const refused = await writeContractAndWait(clients, {
      address: growing,
      abi: ABI,
      functionName: 'poke',
      args: [],
      onSigned: () => {
        throw new Error('journal not writable');
      },
    }).catch((e: unknown) => e);
    expect(String((refused as Error).message)).toContain('journal not writable');
    expect(proxy.calls.filter((c) => c.method === 'eth_sendRawTransaction')).toEqual([]);
  });

  it('gives concurrent writes from one account consecutive nonces: every one is mined', async () => {
    proxy.calls.length = 0;
    const before = await clients.public.getTransactionCount({ address: anvil.accounts[0]!.address });
    const all = await Promise.all(Array.from({ length: 4 }, () => poke(clients, growing)));
    const nonces = await Promise.all(
      all.map(async (r) => (await clients.public.getTransaction({ hash: r.hash })).nonce),
    );
    expect(nonces.sort((a, b) => a - b)).toEqual([before, before + 1, before + 2, before + 3]);
    expect(all.every((r) => r.receipt.status === 'success')).toBe(true);
    expect(onPending(proxy.calls)).toEqual([]);
  });

  it('refuses a write that reverts with ChainRevertedError, before sending it', async () => {
    const before = await clients.public.getTransactionCount({ address: anvil.accounts[0]!.address });
    await expect(poke(clients, reverts)).rejects.toBeInstanceOf(ChainRevertedError);
    expect(await clients.public.getTransactionCount({ address: anvil.accounts[0]!.address })).toBe(before);
  });

  it('sends a legacy transaction on a chain without base fees, still with no request on the pending block', async () => {
    const old = await startAnvil({ accounts: 1, hardfork: 'berlin' });
    const p = await recordingRpcProxy(old.rpcUrl);
    try {
      const c = createFirnClients(p.url, old.accounts[0]!.privateKey, placeholderDeployment(old), {
        pollingIntervalMs: 20,
      });
      const target = await deployRaw(c, GROWING, true);
      p.calls.length = 0;
      const res = await poke(c, target);
      expect(res.receipt.status).toBe('success');
      expect((await c.public.getTransaction({ hash: res.hash })).type).toBe('legacy');
      expect(onPending(p.calls)).toEqual([]);
    } finally {
      p.server.close();
      await old.stop();
    }
  }, 30_000);
});

/** The hash of the one transaction waiting in `a`'s pool (waits, bounded, until there is one). */
async function pooledHash(a: AnvilInstance): Promise<Hex> {
  for (let i = 0; i < 250; i++) {
    const block = (await rpcCall(a.rpcUrl, 'eth_getBlockByNumber', ['pending', false])) as {
      transactions: Hex[];
    };
    if (block.transactions.length > 0) return block.transactions[0]!;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('no transaction reached the pool');
}

/**
 * A proxy in front of `a` that forwards the second raw transaction sent after `clients()` to anvil
 * but answers it with an error, as when the RPC's answer is lost or times out on a loaded machine
 * after the node took it; `clients()` gives clients through it (short rounds), the contract
 * deployed, automine off.
 */
async function secondRawAnswerLost(a: AnvilInstance) {
  let raws = 0;
  const server = await rewritingRpcProxy(a.rpcUrl, (m) => {
    if (m.method !== 'eth_sendRawTransaction' || ++raws !== 2) return undefined;
    void fetch(a.rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(m),
    });
    return { jsonrpc: '2.0', id: m.id, error: { code: -32603, message: 'request timed out' } };
  });
  return {
    server: server.server,
    raws: () => raws,
    async clients() {
      const c = createFirnClients(server.url, a.accounts[0]!.privateKey, placeholderDeployment(a), {
        pollingIntervalMs: 20,
        receiptWait: { roundMs: 300, rounds: 20 },
      });
      const target = await deployRaw(c, GROWING);
      raws = 0;
      await rpcCall(a.rpcUrl, 'evm_setAutomine', [false]);
      return { c, target };
    },
  };
}

describe('writeContractAndWait: the receipt wait is bounded', () => {
  /** A fresh anvil with automine off, the contract deployed, and clients with short rounds. */
  async function setup(receiptWait?: { roundMs: number; rounds: number }) {
    const a = await startAnvil({ accounts: 1 });
    const opts = { pollingIntervalMs: 20, ...(receiptWait === undefined ? {} : { receiptWait }) };
    const c = createFirnClients(a.rpcUrl, a.accounts[0]!.privateKey, placeholderDeployment(a), opts);
    const other = createFirnClients(a.rpcUrl, a.accounts[0]!.privateKey, placeholderDeployment(a), opts);
    const target = await deployRaw(c, GROWING);
    await rpcCall(a.rpcUrl, 'evm_setAutomine', [false]);
    return { a, c, other, target };
  }

  it('fails E_CHAIN_REPLACED naming nonce and hash when another sender with the key takes the nonce, and frees the queue', async () => {
    const { a, c, other, target } = await setup();
    try {
      const nonce = await c.public.getTransactionCount({ address: a.accounts[0]!.address });
      const p = poke(c, target).then(
        () => undefined,
        (e: unknown) => e,
      );
      const ours = await pooledHash(a);
      const theirs = await sendReplacementAt(other, nonce);
      await rpcCall(a.rpcUrl, 'evm_mine', []);
      const err = await p;
      expect(isFirnError(err) && err.code).toBe('E_CHAIN_REPLACED');
      const details = (err as { details: Record<string, unknown> }).details;
      expect(details.nonce).toBe(nonce);
      expect(details.hash).toBe(ours);
      expect(details.hash).not.toBe(theirs);
      expect(String((err as Error).message)).toContain(ours);
      // The account's queue is free: the next write goes on and is mined.
      await rpcCall(a.rpcUrl, 'evm_setAutomine', [true]);
      const next = await poke(c, target);
      expect(next.receipt.status).toBe('success');
      expect(next.receipt.transactionHash).toBe(next.hash);
    } finally {
      await a.stop();
    }
  }, 30_000);

  it('sends a write dropped from the pool again at the same nonce with fresh fees, and returns its own receipt', async () => {
    const { a, c, target } = await setup();
    try {
      const nonce = await c.public.getTransactionCount({ address: a.accounts[0]!.address });
      const p = poke(c, target);
      const first = await pooledHash(a);
      // A base-fee spike prices it out; anvil drops it when the block is built.
      const head = await c.public.getBlock();
      await rpcCall(a.rpcUrl, 'anvil_setNextBlockBaseFeePerGas', [
        `0x${(head.baseFeePerGas! * 10n).toString(16)}`,
      ]);
      await rpcCall(a.rpcUrl, 'evm_mine', []);
      await rpcCall(a.rpcUrl, 'evm_setAutomine', [true]);
      const res = await p;
      expect(res.hash).not.toBe(first);
      expect(res.receipt.transactionHash).toBe(res.hash);
      expect(res.receipt.status).toBe('success');
      expect((await c.public.getTransaction({ hash: res.hash })).nonce).toBe(nonce);
    } finally {
      await a.stop();
    }
  }, 30_000);

  it('re-prices a write the base fee left behind while it waits in the pool, at the same nonce, and the next block mines it', async () => {
    const { a, c, target } = await setup({ roundMs: 300, rounds: 20 });
    try {
      const nonce = await c.public.getTransactionCount({ address: a.accounts[0]!.address });
      const p = poke(c, target);
      p.catch(() => undefined); // awaited below; a failure is reported there
      const first = await pooledHash(a);
      const sentFirst = await c.public.getTransaction({ hash: first });
      // A spike: the next block's base fee goes 10x, above the write's fee cap. No block is mined,
      // so the write stays in the pool, priced out (as on a live chain, where it would wait there
      // until the base fee falls back).
      const head = await c.public.getBlock();
      const spiked = head.baseFeePerGas! * 10n;
      expect(sentFirst.maxFeePerGas!).toBeLessThan(spiked);
      await rpcCall(a.rpcUrl, 'anvil_setNextBlockBaseFeePerGas', [`0x${spiked.toString(16)}`]);
      // The write replaces itself in the pool within a few rounds (the next block would hold it).
      let pooled: Hex | undefined;
      for (let i = 0; i < 150 && (pooled === undefined || pooled === first); i++) {
        await new Promise((r) => setTimeout(r, 20));
        const next = (await rpcCall(a.rpcUrl, 'eth_getBlockByNumber', ['pending', false])) as {
          transactions: Hex[];
        };
        pooled = next.transactions[0];
      }
      expect(pooled, 'the write was not re-priced while it waited').toBeDefined();
      expect(pooled).not.toBe(first);
      if (pooled === undefined) return;
      const replacement = await c.public.getTransaction({ hash: pooled });
      expect(replacement.nonce).toBe(nonce);
      expect(replacement.maxFeePerGas!).toBeGreaterThanOrEqual(spiked);
      // The replacement rule: every fee at least 10 % over the one it replaces.
      expect(replacement.maxFeePerGas! * 10n).toBeGreaterThanOrEqual(sentFirst.maxFeePerGas! * 11n);
      expect(replacement.maxPriorityFeePerGas! * 10n).toBeGreaterThanOrEqual(
        sentFirst.maxPriorityFeePerGas! * 11n,
      );
      // One block, at the spiked base fee, mines it.
      await rpcCall(a.rpcUrl, 'evm_mine', []);
      const mined = await c.public.getBlock();
      expect(mined.baseFeePerGas).toBe(spiked);
      const res = await p;
      expect(res.hash).toBe(pooled);
      expect(res.receipt.transactionHash).toBe(pooled);
      expect(res.receipt.status).toBe('success');
      expect(res.receipt.blockNumber).toBe(mined.number);
    } finally {
      await a.stop();
    }
  }, 30_000);

  it('a re-priced resend the chain took but whose answer was lost is still its own: its receipt is returned, never E_CHAIN_REPLACED', async () => {
    const a = await startAnvil({ accounts: 1 });
    // The second raw transaction (the re-price) reaches anvil, but its answer is lost.
    const lossy = await secondRawAnswerLost(a);
    try {
      const { c, target } = await lossy.clients();
      const p = poke(c, target).then(
        (r) => r,
        (e: unknown) => e,
      );
      const first = await pooledHash(a);
      const head = await c.public.getBlock();
      await rpcCall(a.rpcUrl, 'anvil_setNextBlockBaseFeePerGas', [
        `0x${(head.baseFeePerGas! * 10n).toString(16)}`,
      ]);
      let pooled: Hex | undefined;
      for (let i = 0; i < 150 && (pooled === undefined || pooled === first); i++) {
        await new Promise((r) => setTimeout(r, 20));
        const next = (await rpcCall(a.rpcUrl, 'eth_getBlockByNumber', ['pending', false])) as {
          transactions: Hex[];
        };
        pooled = next.transactions[0];
      }
      expect(lossy.raws(), 'the write was not re-priced').toBeGreaterThanOrEqual(2);
      expect(pooled).not.toBe(first);
      await rpcCall(a.rpcUrl, 'evm_mine', []);
      const res = await p;
      expect(isFirnError(res) ? res.code : undefined).toBeUndefined();
      const r = res as Awaited<ReturnType<typeof poke>>;
      expect(r.receipt.transactionHash).toBe(pooled);
      expect(r.hash).toBe(pooled);
      expect(r.receipt.status).toBe('success');
    } finally {
      lossy.server.close();
      await a.stop();
    }
  }, 30_000);

  it('a receipt an RPC serves later than the account nonce it reports is still found: never E_CHAIN_REPLACED', async () => {
    const a = await startAnvil({ accounts: 1 });
    // After the block is mined, receipts are answered null for 600 ms while the nonce is current
    // (a node indexing receipts after it applied the block, or a load balancer's lagging node).
    let lagUntil = 0;
    const lagging = await rewritingRpcProxy(a.rpcUrl, (m) =>
      m.method === 'eth_getTransactionReceipt' && Date.now() < lagUntil
        ? { jsonrpc: '2.0', id: m.id, result: null }
        : undefined,
    );
    try {
      const c = createFirnClients(lagging.url, a.accounts[0]!.privateKey, placeholderDeployment(a), {
        pollingIntervalMs: 20,
        receiptWait: { roundMs: 200, rounds: 20 },
      });
      const target = await deployRaw(c, GROWING);
      await rpcCall(a.rpcUrl, 'evm_setAutomine', [false]);
      const p = poke(c, target).then(
        (r) => r,
        (e: unknown) => e,
      );
      const ours = await pooledHash(a);
      lagUntil = Date.now() + 600;
      await rpcCall(a.rpcUrl, 'evm_mine', []);
      const res = await p;
      expect(isFirnError(res) ? `${res.code}: ${res.message}` : undefined).toBeUndefined();
      expect((res as Awaited<ReturnType<typeof poke>>).receipt.transactionHash).toBe(ours);
    } finally {
      lagging.server.close();
      await a.stop();
    }
  }, 30_000);

  it('a resend after a drop from the pool, taken by the chain with its answer lost, is still its own', async () => {
    const a = await startAnvil({ accounts: 1 });
    const lossy = await secondRawAnswerLost(a);
    try {
      const { c, target } = await lossy.clients();
      const p = poke(c, target).then(
        (r) => r,
        (e: unknown) => e,
      );
      const first = await pooledHash(a);
      // A spike prices it out and the block built drops it; the resend goes out with fresh fees.
      const head = await c.public.getBlock();
      await rpcCall(a.rpcUrl, 'anvil_setNextBlockBaseFeePerGas', [
        `0x${(head.baseFeePerGas! * 10n).toString(16)}`,
      ]);
      await rpcCall(a.rpcUrl, 'evm_mine', []);
      let pooled: Hex | undefined;
      for (let i = 0; i < 200 && pooled === undefined; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const next = (await rpcCall(a.rpcUrl, 'eth_getBlockByNumber', ['pending', false])) as {
          transactions: Hex[];
        };
        pooled = next.transactions[0];
      }
      expect(pooled, 'no resend reached the pool').toBeDefined();
      expect(pooled).not.toBe(first);
      await rpcCall(a.rpcUrl, 'evm_mine', []);
      const res = await p;
      expect(isFirnError(res) ? `${res.code}: ${res.message}` : undefined).toBeUndefined();
      const r = res as Awaited<ReturnType<typeof poke>>;
      expect(r.hash).toBe(pooled);
      expect(r.receipt.status).toBe('success');
    } finally {
      lossy.server.close();
      await a.stop();
    }
  }, 30_000);

  it('fails typed "not mined" after its rounds when no block comes, and the next write of the account goes on', async () => {
    const { a, c, target } = await setup({ roundMs: 300, rounds: 3 });
    try {
      const nonce = await c.public.getTransactionCount({ address: a.accounts[0]!.address });
      const t0 = Date.now();
      const err = await poke(c, target).then(
        () => undefined,
        (e: unknown) => e,
      );
      const waited = Date.now() - t0;
      expect(isFirnError(err) && err.code).toBe('E_CHAIN');
      expect(String((err as Error).message)).toMatch(/not mined after \d+ s/);
      const details = (err as { details: Record<string, unknown> }).details;
      expect(details.nonce).toBe(nonce);
      expect(details.hash).toBe(await pooledHash(a));
      expect(waited).toBeGreaterThanOrEqual(700); // 3 rounds of 300 ms, each ends within a poll
      expect(waited).toBeLessThan(10_000);
      // Blocks come again: the next write is queued behind nothing and is mined (after the first).
      await rpcCall(a.rpcUrl, 'evm_setAutomine', [true]);
      const next = await poke(c, target);
      expect(next.receipt.status).toBe('success');
      expect((await c.public.getTransaction({ hash: next.hash })).nonce).toBe(nonce + 1);
    } finally {
      await a.stop();
    }
  }, 30_000);
  it('waits out a chain outage longer than its rounds (rounds count only when the chain answers), then returns its own receipt', async () => {
    const { a, target } = await setup();
    let down = false;
    const proxy = await rewritingRpcProxy(a.rpcUrl, (m) =>
      down
        ? { jsonrpc: '2.0', id: m.id, error: { code: -32603, message: 'chain unreachable (test outage)' } }
        : undefined,
    );
    try {
      const c = createFirnClients(proxy.url, a.accounts[0]!.privateKey, placeholderDeployment(a), {
        pollingIntervalMs: 20,
        receiptWait: { roundMs: 200, rounds: 2 },
      });
      const p = poke(c, target).then(
        (r) => r,
        (e: unknown) => e,
      );
      const pooled = await pooledHash(a);
      // The RPC fails for longer than all rounds and the client's own retries; meanwhile the
      // transaction is mined.
      down = true;
      await rpcCall(a.rpcUrl, 'evm_mine', []);
      await new Promise((r) => setTimeout(r, 3_000));
      down = false;
      const res = await p;
      expect(isFirnError(res)).toBe(false);
      const ok = res as Awaited<ReturnType<typeof poke>>;
      expect(ok.hash).toBe(pooled);
      expect(ok.receipt.transactionHash).toBe(pooled);
      expect(ok.receipt.status).toBe('success');
    } finally {
      proxy.server.close();
      await a.stop();
    }
  }, 30_000);

  it("closed clients stop a write waiting out an outage, so the account's next write (another chain) is not queued behind it forever", async () => {
    // A daemon whose write waits through an outage (its anvil gone) and is then stopped: the
    // account's write queue in this process must not stay held by that write.
    const { a, target } = await setup();
    const closed = new AbortController();
    const c = createFirnClients(a.rpcUrl, a.accounts[0]!.privateKey, placeholderDeployment(a), {
      pollingIntervalMs: 20,
      receiptWait: { roundMs: 200, rounds: 2 },
      signal: closed.signal,
    });
    const p = poke(c, target).then(
      (r) => r,
      (e: unknown) => e,
    );
    const pooled = await pooledHash(a);
    await a.stop();
    // Same key and chain id, a fresh chain: its write is queued behind the stranded one.
    const b = await startAnvil({ accounts: 1 });
    try {
      const fresh = createFirnClients(b.rpcUrl, b.accounts[0]!.privateKey, placeholderDeployment(b), {
        pollingIntervalMs: 20,
      });
      const there = await deployRaw(fresh, GROWING);
      const next = poke(fresh, there).then(
        (r) => r.receipt.status,
        (e: unknown) => e,
      );
      await new Promise((r) => setTimeout(r, 1_500));
      closed.abort();
      const err = await p;
      expect(isFirnError(err) && err.code).toBe('E_UNAVAILABLE');
      expect((err as { details?: Record<string, unknown> }).details?.hash).toBe(pooled);
      expect(String((err as Error).message)).toMatch(/poke: stopped waiting/);
      const mined = await Promise.race([
        next,
        new Promise((r) => setTimeout(() => r('still queued'), 10_000)),
      ]);
      expect(mined).toBe('success');
      // And a write through the closed clients is refused before it sends.
      const refused = await poke(c, target).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isFirnError(refused) && refused.code).toBe('E_UNAVAILABLE');
      expect(String((refused as Error).message)).toMatch(/not sent/);
    } finally {
      await b.stop();
    }
  }, 40_000);
});
