import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseTransaction, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devnetAccounts } from '../../packages/chain/src/anvil.ts';
import { deployFirn } from '../../packages/chain/src/deploy.ts';
import { resolveFeeCeiling } from '../../packages/chain/src/clients.ts';

// Decision 1470: "the node, the verifier and every CLI command" sign no fee above the ceiling,
// whatever the RPC says. deployFirn (firn deploy) sends its contract creations through viem's
// deployContract, which fills fees and gas from the RPC. A hostile RPC names a tip of 100,000 gwei:
// a creation of a few million gas would pay hundreds of ETH of tip.
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
            return ok(hex(3_000_000n));
          case 'eth_getTransactionCount':
            return ok('0x0');
          case 'eth_maxPriorityFeePerGas':
            return ok(hex(100_000n * GWEI));
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

describe('a deployment under a lying RPC', () => {
  it('signs no fee above the fee ceiling', async () => {
    await deployFirn({
      rpcUrl: url,
      deployerKey: KEY as Hex,
      profile: 'devnet',
      governanceDelay: 0,
      minNodeStake: 1n,
      minVerifierStake: 1n,
      unbondingPeriod: 60,
      challengeWindow: 60,
      slashAmount: 1n,
      epochLength: 60,
      answerWindow: 60,
      pollingIntervalMs: 20,
    } as Parameters<typeof deployFirn>[0]).catch(() => undefined);
    const ceiling = resolveFeeCeiling({}, {});
    for (const raw of sent) {
      const tx = parseTransaction(raw);
      expect(tx.maxPriorityFeePerGas ?? 0n).toBeLessThanOrEqual(ceiling.maxPriorityFeePerGas);
      expect(tx.maxFeePerGas ?? tx.gasPrice ?? 0n).toBeLessThanOrEqual(ceiling.maxFeePerGas);
    }
  }, 20_000);
});
