import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Hex } from 'viem';

/** What the fake RPC names for the values a signer fills from it (wei or gas). */
export interface LyingFeeRpcAnswers {
  /** eth_estimateGas, gas. */
  estimateGas: bigint;
  /** eth_maxPriorityFeePerGas, wei. */
  maxPriorityFeePerGas: bigint;
  /** eth_gasPrice, wei (default 2 gwei). */
  gasPrice?: bigint;
  /** The latest block's base fee, wei (default 1 gwei). */
  baseFeePerGas?: bigint;
  /**
   * eth_fillTransaction: when set, the filled transaction (gas, fees) the RPC names, marked as
   * co-signed by a fee payer (a non-null feePayerSignature); unset, the method is unknown.
   */
  fillTransaction?: { gas: bigint; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint };
}

/** A running fake RPC: its URL, every raw transaction it was sent (refused), and how to stop it. */
export interface LyingFeeRpc {
  url: string;
  /** Raw signed transactions received by eth_sendRawTransaction, in order. */
  sent: Hex[];
  close: () => void;
}

/**
 * A JSON-RPC server on 127.0.0.1 (chain id 31337, block 16) that answers fee and gas questions
 * with `answers` and records, then refuses, every raw transaction: the fee-ceiling attack tests
 * (decision 1470) read what a key signed under a lying RPC without any real chain.
 */
export async function startLyingFeeRpc(answers: LyingFeeRpcAnswers): Promise<LyingFeeRpc> {
  const GWEI = 10n ** 9n;
  const hex = (n: bigint) => `0x${n.toString(16)}`;
  const sent: Hex[] = [];
  const server = createServer((req, res) => {
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
            return ok(hex(answers.estimateGas));
          case 'eth_getTransactionCount':
            return ok('0x0');
          case 'eth_maxPriorityFeePerGas':
            return ok(hex(answers.maxPriorityFeePerGas));
          case 'eth_gasPrice':
            return ok(hex(answers.gasPrice ?? 2n * GWEI));
          case 'eth_blockNumber':
            return ok('0x10');
          case 'eth_getBlockByNumber':
            return ok({
              number: '0x10',
              hash: `0x${'11'.repeat(32)}`,
              parentHash: `0x${'22'.repeat(32)}`,
              timestamp: hex(BigInt(Math.floor(Date.now() / 1000))),
              baseFeePerGas: hex(answers.baseFeePerGas ?? GWEI),
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
          case 'eth_fillTransaction': {
            const f = answers.fillTransaction;
            if (!f) return { jsonrpc: '2.0', id: m.id, error: { code: -32601, message: `no ${m.method}` } };
            const r = (m.params as Record<string, string>[])[0]!;
            return ok({
              raw: '0x',
              tx: {
                type: '0x2',
                chainId: '0x7a69',
                nonce: '0x0',
                from: r.from,
                to: r.to ?? null,
                value: r.value ?? '0x0',
                input: r.data ?? r.input ?? '0x',
                gas: hex(f.gas),
                maxFeePerGas: hex(f.maxFeePerGas),
                maxPriorityFeePerGas: hex(f.maxPriorityFeePerGas),
                accessList: [],
                feePayerSignature: { r: `0x${'01'.repeat(32)}`, s: `0x${'01'.repeat(32)}`, yParity: '0x0' },
              },
            });
          }
          case 'eth_sendRawTransaction':
            sent.push((m.params as Hex[])[0]!);
            // Refuse it: the tests only need what the key signed.
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
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sent,
    close: () => server.close(),
  };
}
