import { createServer, type Server } from 'node:http';
import { DEV_POLICY } from '@firn/attestation';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../packages/node/src/logger.ts';
import { VerifierDaemon } from '../../packages/verifier/src/verifierDaemon.ts';
import { DEVNET_CONTRACTS } from '../helpers/stoppedDevnetState.ts';

// A verifier operator runs `firn verifier start --rpc https://host/v2/<API KEY>` (the README's
// command) against a hosted RPC. Decision 1686 promises "no RPC URL's key, password or query
// reaches the user's terminal or logs", and the CLI redacts its own error lines; but the verifier
// daemon logs viem's raw error text (`message: e.message`: verifierDaemon.ts "registration watch
// failed; retrying", proofChecker.ts "proof watch failed; retrying", ...), and viem's message
// carries `URL: <the full RPC URL>`. One RPC hiccup (a 502 from the provider, a restart) writes the
// API key into the JSON log lines an operator ships to their log store. Safe outcome: no log line
// holds the key (or the password, or the query value).
const KEY = 'Sk3yZQ9x7LmP4vRt2WnB8cYd';
let rpc: Server;
let rpcUrl: string;

beforeAll(async () => {
  // A provider having a bad minute: every call answered 502.
  rpc = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('bad gateway');
    });
  });
  await new Promise<void>((r) => rpc.listen(0, '127.0.0.1', r));
  const port = (rpc.address() as { port: number }).port;
  rpcUrl = `http://op:hunter2secret@127.0.0.1:${port}/v2/${KEY}?apikey=QUERYSECRET123`;
});

afterAll(() => {
  rpc?.closeAllConnections();
  rpc?.close();
});

describe('verifier logs and the RPC URL', () => {
  it('a failing RPC call never writes the RPC key, password or query into a log line', async () => {
    const lines: string[] = [];
    const logger = createLogger(
      { component: 'verifier' },
      { level: 'debug', write: (l: string) => lines.push(l) },
    );
    const d = new VerifierDaemon({
      rpcUrl,
      verifierKey: `0x${'59'.repeat(32)}`,
      deployment: { chainId: 31337, ...DEVNET_CONTRACTS, deployBlock: 0n } as never,
      policy: DEV_POLICY,
      logger,
      pollIntervalMs: 100,
      maxBackoffMs: 200,
      sweepIntervalMs: 200,
    } as never);
    d.start();
    try {
      for (let i = 0; i < 100 && !lines.some((l) => /failed/.test(l)); i++)
        await new Promise((r) => setTimeout(r, 100));
    } finally {
      d.stop();
    }
    const all = lines.join('\n');
    // The daemon did log the RPC failures (the test saw what an operator's log gets).
    expect(all).toMatch(/failed/);
    expect(all).not.toContain(KEY);
    expect(all).not.toContain('hunter2secret');
    expect(all).not.toContain('QUERYSECRET123');
  }, 30_000);
});
