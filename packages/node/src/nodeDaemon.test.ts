import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FirnDeployment } from '@firn/chain';
import type { Hex } from '@firn/core';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';
import { NodeDaemon, type NodeDaemonOptions } from './nodeDaemon.ts';

// Decision 1830: the node starts its enclave for one operator account (its chain key's, or the
// `operator` option of a serve-only node), checked at construction, before any enclave runs.
// The enclave side (fixed at init, bound into quotes) is packages/enclave/src/enclaveProgram.test.ts;
// a node registering end to end is tests/attacks/registration-relay-hijack.test.ts.
const dataDir = mkdtempSync(join(tmpdir(), 'firn-node-operator-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
const base: NodeDaemonOptions = {
  dataDir,
  bundlePath: join(dataDir, 'no-bundle.mjs'),
  enclaveEnv: { FIRN_TEE: 'simulated' },
  logger: createLogger({ component: 'node' }, { write: () => undefined }),
};
// A throwaway test key (0x11 repeated): it funds nothing and exists only in this test.
const KEY: Hex = `0x${'11'.repeat(32)}`;
const ADDRESS = privateKeyToAccount(KEY).address;
const chain = { rpcUrl: 'http://127.0.0.1:9', deployment: {} as FirnDeployment, operatorKey: KEY };

describe('NodeDaemon: the operator its enclave serves', () => {
  it("is the chain key's account, lower-case; none for a serve-only node", () => {
    expect(new NodeDaemon({ ...base, chain }).operator).toBe(ADDRESS.toLowerCase());
    expect(new NodeDaemon(base).operator).toBeUndefined();
  });

  it('a serve-only node may name one; with a chain key it must be that account (any case)', () => {
    const other = `0x${'ab'.repeat(20)}` as Hex;
    expect(
      new NodeDaemon({ ...base, operator: other.toUpperCase().replace('0X', '0x') as Hex }).operator,
    ).toBe(other);
    expect(new NodeDaemon({ ...base, chain, operator: ADDRESS }).operator).toBe(ADDRESS.toLowerCase());
    expect(() => new NodeDaemon({ ...base, chain, operator: other })).toThrow(
      expect.objectContaining({
        code: 'E_INVALID_INPUT',
        message: expect.stringMatching(new RegExp(`${other}.*${ADDRESS.toLowerCase()}`)),
      }),
    );
  });

  it('a malformed operator or chain key is E_INVALID_INPUT', () => {
    for (const operator of ['0x1234', 'not hex', `0x${'ab'.repeat(32)}`] as Hex[])
      expect(() => new NodeDaemon({ ...base, operator })).toThrow(
        expect.objectContaining({ code: 'E_INVALID_INPUT' }),
      );
    expect(() => new NodeDaemon({ ...base, chain: { ...chain, operatorKey: '0x1234' } })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT', message: expect.stringMatching(/operatorKey/) }),
    );
  });
});
