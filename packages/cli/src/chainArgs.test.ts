import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FirnDeployment } from '@firn/chain';
import type { Hex } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstPartyNodeChoice, keyFileExposure, type ResolvedChain, resolveChain } from './chainArgs.ts';

const deployment = { chainId: 31337, deployBlock: 0n } as FirnDeployment;
const M = `0x${'ab'.repeat(32)}` as Hex;
const chain = (devnet?: Record<string, unknown>): ResolvedChain => ({
  rpcUrl: 'http://127.0.0.1:8545',
  deployment,
  ...(devnet ? { devnet } : {}),
});

describe('firstPartyNodeChoice (firn infer, firn train)', () => {
  it("picks only nodes on the devnet's first-party image when no --node is named", () => {
    expect(firstPartyNodeChoice(chain({ measurement: M }), undefined)).toEqual({
      firstPartyMeasurements: [M],
    });
  });
  it('adds nothing when --node names the node, or the chain names no first-party measurement', () => {
    expect(firstPartyNodeChoice(chain({ measurement: M }), 'http://127.0.0.1:9000')).toEqual({});
    expect(firstPartyNodeChoice(chain(), undefined)).toEqual({});
    expect(firstPartyNodeChoice(chain({ measurement: '' }), undefined)).toEqual({});
    expect(firstPartyNodeChoice(chain({ measurement: 7 }), undefined)).toEqual({});
  });
});

describe.skipIf(process.platform === 'win32')('keyFileExposure (firn deploy --key-file)', () => {
  const key = join(mkdtempSync(join(tmpdir(), 'firn-keymode-')), 'deployer.key');
  writeFileSync(key, `0x${'11'.repeat(32)}\n`);
  it('names the file, who can read it and the fix when group or others have any access', () => {
    chmodSync(key, 0o644);
    expect(keyFileExposure(key)).toBe(
      `--key-file ${key} is open to its group and every account on this machine (mode 0644): anyone who can read it can sign as this key; run chmod 600 ${key}`,
    );
    chmodSync(key, 0o640);
    expect(keyFileExposure(key)).toContain('open to its group on this machine (mode 0640)');
    chmodSync(key, 0o604);
    expect(keyFileExposure(key)).toContain('open to every account on this machine (mode 0604)');
  });
  it('says nothing for a file only its owner can use, or one that does not exist', () => {
    for (const mode of [0o600, 0o400, 0o700]) {
      chmodSync(key, mode);
      expect(keyFileExposure(key)).toBeUndefined();
    }
    expect(keyFileExposure(`${key}.missing`)).toBeUndefined();
  });
});

describe('resolveChain: the devnet or deployment file', () => {
  it('names the flag and the file: missing is E_NOT_FOUND, a directory unreadable, junk not JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-chainargs-'));
    const missing = join(dir, 'state.json');
    await expect(resolveChain({ devnet: missing })).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
      message: expect.stringContaining(`--devnet ${missing} does not exist`),
    });
    await expect(resolveChain({ deployment: dir })).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      message: expect.stringContaining(`--deployment ${dir}: is a directory`),
    });
    const junk = join(dir, 'junk.json');
    writeFileSync(junk, 'not json');
    await expect(resolveChain({ devnet: junk })).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      message: `--devnet ${junk} is not JSON`,
    });
  });
});

describe('resolveChain: where the RPC comes from (decision 1749)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'firn-rpcsource-'));
  const contracts = {
    registry: '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512',
    verifierSet: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
    jobMarket: '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0',
    dataLedger: '0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9',
  };
  const file = (name: string, o: Record<string, unknown>) => {
    const p = join(dir, name);
    writeFileSync(p, JSON.stringify({ chainId: 31337, contracts, deployBlock: '0', ...o }));
    return p;
  };
  let server: Server;
  let otherChain: string;
  let calls = 0;
  beforeAll(async () => {
    // An RPC of another chain (Sepolia's id).
    server = createServer((req, res) => {
      calls++;
      let b = '';
      req.on('data', (c) => (b += c));
      req.on('end', () => {
        const id = (JSON.parse(b) as { id?: number }).id ?? 1;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id, result: '0xaa36a7' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    otherChain = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const withEnv = async <T>(v: string | undefined, f: () => Promise<T>): Promise<T> => {
    const saved = process.env['FIRN_RPC_URL'];
    if (v === undefined) delete process.env['FIRN_RPC_URL'];
    else process.env['FIRN_RPC_URL'] = v;
    try {
      return await f();
    } finally {
      if (saved === undefined) delete process.env['FIRN_RPC_URL'];
      else process.env['FIRN_RPC_URL'] = saved;
    }
  };

  it("FIRN_RPC_URL never replaces a devnet file's RPC: a different one is refused naming both, before any RPC call", async () => {
    const state = file('state.json', { rpcUrl: 'http://127.0.0.1:8545' });
    calls = 0;
    await withEnv(`${otherChain}/v2/Sk3yZQ9x7LmP4vRt2WnB8cYd`, () =>
      expect(resolveChain({ devnet: state })).rejects.toMatchObject({
        code: 'E_INVALID_INPUT',
        message: expect.stringMatching(
          new RegExp(
            `^FIRN_RPC_URL \\(${otherChain}/v2/\\*\\*\\*\\) names another RPC than the rpcUrl of --devnet ${state} \\(http://127\\.0\\.0\\.1:8545\\)`,
          ),
        ),
      }),
    );
    expect(calls).toBe(0);
    // The same URL in both is no conflict: the file's RPC, named as such.
    const same = await withEnv('http://127.0.0.1:8545', () => resolveChain({ devnet: state }));
    expect(same).toMatchObject({
      rpcUrl: 'http://127.0.0.1:8545',
      rpcSource: `the rpcUrl of --devnet ${state}`,
    });
  });

  it('FIRN_RPC_URL fills a file that names no RPC, and a wrong chain names FIRN_RPC_URL, not --rpc', async () => {
    const dep = file('deployment.json', {});
    await withEnv(otherChain, () =>
      expect(resolveChain({ deployment: dep })).rejects.toMatchObject({
        code: 'E_INVALID_INPUT',
        message: `${dep} is for chain id 31337 but the RPC answers chain id 11155111 (that RPC is ${otherChain}, from FIRN_RPC_URL): set FIRN_RPC_URL to an RPC of that chain, or pass --rpc`,
      }),
    );
    // --rpc wins over both, and the refusal names it.
    const state = file('state2.json', { rpcUrl: 'http://127.0.0.1:8545' });
    await withEnv('http://127.0.0.1:1', () =>
      expect(resolveChain({ devnet: state, rpc: otherChain })).rejects.toMatchObject({
        message: expect.stringContaining(
          `answers chain id 11155111 (that RPC is ${otherChain}, from --rpc): pass the matching --rpc`,
        ),
      }),
    );
  });
});
