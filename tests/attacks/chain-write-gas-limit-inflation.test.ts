import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseAbi, parseTransaction, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devnetAccounts } from '../../packages/chain/src/anvil.ts';
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
const hex = (n: bigint) => `0x${n.toString(16)}`;
let server: Server;
let url: string;
const sent: Hex[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const one = (m: { id: number; method: string; params: unknown[] }) => {
        const ok = (result: unknown) => ({ jsonrpc: '2.0', id: m.id, result });
        switch (m.method) {
          case 'eth_chainId':
            return ok('0x7a69');
          case 'eth_call':
            return ok('0x');
          case 'eth_estimateGas':
            return ok(hex(1_000_000_000n));
          case 'eth_getTransactionCount':
            return ok('0x0');
          case 'eth_maxPriorityFeePerGas':
            return ok(hex(GWEI));
          case 'eth_gasPrice':
            return ok(hex(2n * GWEI));
          case 'eth_blockNumber':
            return ok('0x10');
          case 'eth_getBlockByNumber':
            return ok({
              number: '0x10',
              hash: `0x${'11'.repeat(32)}`,
              parentHash: `0x${'22'.repeat(32)}`,
              timestamp: hex(BigInt(Math.floor(Date.now() / 1000))),
              baseFeePerGas: hex(GWEI),
              gasLimit: hex(30_000_000n),
              gasUsed: '0x0',
              transactions: [],
              miner: `0x${'00'.repeat(20)}`,
              difficulty: '0x0',
              extraData: '0x',
              logsBloom: `0x${'00'.repeat(256)}`,
              nonce: '0x0000000000000000',
              receiptsRoot: `0x${'00'.repeat(32)}`,
              sha3Uncles: `0x${'00'.repeat(32)}`,
              stateRoot: `0x${'00'.repeat(32)}`,
              transactionsRoot: `0x${'00'.repeat(32)}`,
              size: '0x0',
              totalDifficulty: '0x0',
              uncles: [],
            });
          case 'eth_sendRawTransaction':
            sent.push((m.params as Hex[])[0]!);
            // Refuse it: the test only needs what the key signed.
            return { jsonrpc: '2.0', id: m.id, error: { code: -32000, message: 'stop here' } };
          default:
            return { jsonrpc: '2.0', id: m.id, error: { code: -32601, message: `no ${m.method}` } };
        }
      };
      const parsed = JSON.parse(body);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(Array.isArray(parsed) ? parsed.map(one) : one(parsed)));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => server?.close());

describe('a write under a lying eth_estimateGas', () => {
  it('signs no transaction whose worst-case cost (gas x maxFeePerGas) exceeds a bounded amount', async () => {
    const clients = createFirnClients(
      url,
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
    for (const raw of sent) {
      const tx = parseTransaction(raw);
      const worst = (tx.gas ?? 0n) * (tx.maxFeePerGas ?? tx.gasPrice ?? 0n);
      // At most a block's worth of gas (30M) at the fee ceiling (500 gwei): 15 ETH; the signed
      // transaction may not authorise more than that on any chain.
      expect(tx.gas).toBeLessThanOrEqual(30_000_000n);
      expect(worst).toBeLessThanOrEqual(30_000_000n * 500n * GWEI);
    }
  }, 20_000);
});
