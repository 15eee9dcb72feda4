import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEV_POLICY } from '@firn/attestation';
import type { FirnDeployment } from '@firn/chain';
import { loadDevnetState, type RunJobOptions, runJob } from '@firn/client';
import { FirnError, type Hex } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// A careless new user calls the SDK from a small script (as tests/e2e/pack.test.ts's consumer
// does): a key without its 0x, an escrow written as ether in a number or a string, an RPC URL
// without its scheme, no policy, an RPC that is not there. Promised: a typed error (FirnError,
// stable code) naming the option or the URL, before anything is attested, uploaded or paid;
// never a bare TypeError, noble's or viem's own error without a code, or E_CHAIN "unknown error"
// after the inputs were uploaded.

const KEY = `0x${'5a'.repeat(32)}` as Hex; // a made-up test key, never funded
const a = (n: number) => `0x${n.toString(16).padStart(40, '0')}` as Hex;
const deployment = {
  chainId: 31337,
  registry: a(1),
  verifierSet: a(2),
  jobMarket: a(3),
  dataLedger: a(4),
  deployBlock: 0n,
} as FirnDeployment;

/** A JSON-RPC endpoint that records what it was asked and answers every balance with 100 ETH. */
let rpc: Server;
let rpcUrl: string;
const asked: string[] = [];
beforeAll(async () => {
  rpc = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      const m = JSON.parse(body) as { id: number; method: string };
      asked.push(m.method);
      const result =
        m.method === 'eth_chainId'
          ? '0x7a69'
          : m.method === 'eth_getBalance'
            ? `0x${(10n ** 20n).toString(16)}`
            : null;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result }));
    });
  });
  await new Promise<void>((r) => rpc.listen(0, '127.0.0.1', r));
  rpcUrl = `http://127.0.0.1:${(rpc.address() as AddressInfo).port}`;
});
afterAll(() => rpc?.close());

function options(over: Record<string, unknown>): RunJobOptions {
  return {
    rpcUrl,
    deployment,
    requesterKey: KEY,
    policy: DEV_POLICY,
    kind: 'inference',
    inputs: [{ role: 'input', bytes: new Uint8Array([1, 2, 3]), contentType: 'application/json' }],
    params: {},
    escrow: 10n ** 16n,
    ...over,
  } as RunJobOptions;
}

async function refusal(over: Record<string, unknown>): Promise<FirnError> {
  const e = await runJob(options(over)).then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(FirnError);
  return e as FirnError;
}

describe('attack: the SDK called with careless options', () => {
  it('a requesterKey without 0x is E_INVALID_INPUT naming requesterKey (and not echoing it)', async () => {
    const e = await refusal({ requesterKey: KEY.slice(2) });
    expect(e.code).toBe('E_INVALID_INPUT');
    expect(e.message).toMatch(/requesterKey/);
    expect(e.message).not.toContain(KEY.slice(4));
  });

  it('a requesterKey that is a number is E_INVALID_INPUT naming requesterKey', async () => {
    const e = await refusal({ requesterKey: 12345 });
    expect(e.code).toBe('E_INVALID_INPUT');
    expect(e.message).toMatch(/requesterKey/);
  });

  it('an escrow as ether in a number or a string is E_INVALID_INPUT naming escrow, before the RPC is asked', async () => {
    for (const escrow of [0.01, '0.01']) {
      asked.length = 0;
      const e = await refusal({ escrow });
      expect(e.code).toBe('E_INVALID_INPUT');
      expect(e.message).toMatch(/escrow/);
      expect(asked).toEqual([]);
    }
  });

  it('an rpcUrl without its scheme is E_INVALID_INPUT naming rpcUrl', async () => {
    const e = await refusal({ rpcUrl: rpcUrl.replace('http://', '') });
    expect(e.code).toBe('E_INVALID_INPUT');
    expect(e.message).toMatch(/rpcUrl/);
  });

  it('a missing policy is E_INVALID_INPUT naming policy', async () => {
    const e = await refusal({ policy: undefined });
    expect(e.code).toBe('E_INVALID_INPUT');
    expect(e.message).toMatch(/policy/);
  });

  it('an RPC that is not there is E_UNAVAILABLE naming its URL', async () => {
    const e = await refusal({ rpcUrl: 'http://127.0.0.1:1' });
    expect(e.code).toBe('E_UNAVAILABLE');
    expect(e.message).toContain('http://127.0.0.1:1');
  });

  it('loadDevnetState on a file that is not a state file (null, the input tensors) is a FirnError naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-atk-sdk-state-'));
    for (const [name, text] of [
      ['null.json', 'null'],
      ['input.json', JSON.stringify({ x: { dims: [1], type: 'float32', data: [1] } })],
    ]) {
      const file = join(dir, name!);
      writeFileSync(file, text!);
      let e: unknown;
      try {
        loadDevnetState(file);
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(FirnError);
      expect((e as FirnError).message).toContain(file);
    }
  });
});
