import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FirnDeployment } from '@firn/chain';
import type { Hex } from '@firn/core';
import { describe, expect, it } from 'vitest';
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
