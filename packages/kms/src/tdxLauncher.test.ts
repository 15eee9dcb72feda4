import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PRODUCTION_POLICY, verifierFor } from '@firn/attestation';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { bytesToHex, sharedPath } from '@firn/core';
import { createEnclaveProgram } from '@firn/enclave';
import { createLogger } from '@firn/node';
import { afterAll, describe, expect, it } from 'vitest';
import { environmentFromEnv } from '../../enclave/src/evidence/environmentFromEnv.ts';
import type { TsmFs } from '../../enclave/src/evidence/tdxConfigfs.ts';
import { KmsDaemon } from './kmsDaemon.ts';

/**
 * The enclave started with FIRN_TEE=tdx over a fake configfs-tsm that returns a captured REAL TDX
 * v4 quote (shared vectors, with Intel's collateral at its pinned time). It names itself from the
 * quote; without a broker it has no sealing key; with the broker, the broker appraises the TD's
 * key request and refuses it, because a captured quote cannot bind the broker's fresh nonce and
 * the TD's ephemeral key. Not covered: a real TD whose kernel quotes the report data written to
 * inblob (no TDX hardware here), so the release path on TDX is tested only on the simulated TEE.
 */
const FIX = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'enclave',
  'src',
  'evidence',
  'fixtures',
);
const TDX = readFileSync(join(FIX, 'tdx_quote.bin'));
const NOW = 1752919234;
const collateral = JSON.parse(
  readFileSync(sharedPath('vectors', 'attestation', 'phala-dcap-qvl', 'tdx_quote_collateral.json'), 'utf8'),
);

/** configfs-tsm as the kernel ABI documents it: per-entry provider, generation bumped on write. */
function fakeKernel(): TsmFs {
  const entries = new Map<string, Map<string, Uint8Array>>();
  const parent = (p: string) => p.slice(0, p.lastIndexOf('/'));
  const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
  return {
    mkdir: async (p) => {
      if (!p.includes('/sys/kernel/config/tsm/report/')) throw new Error('ENOENT');
      entries.set(
        p,
        new Map([
          ['provider', Buffer.from('tdx_guest\n')],
          ['generation', Buffer.from('0\n')],
          ['outblob', TDX],
        ]),
      );
    },
    rmdir: async (p) => entries.delete(p),
    readFile: async (p) => {
      const v = entries.get(parent(p))?.get(base(p));
      if (!v) throw new Error('ENOENT');
      return v;
    },
    writeFile: async (p, data) => {
      const e = entries.get(parent(p))!;
      e.set(base(p), data);
      e.set('generation', Buffer.from(`${Number(Buffer.from(e.get('generation')!).toString()) + 1}\n`));
    },
  };
}

const daemons: KmsDaemon[] = [];
afterAll(async () => {
  for (const d of daemons) await d.stop();
});

describe('--tee tdx: the enclave in a TD (configfs-tsm) with its sealing key from the broker', () => {
  it('has no sealing key without a broker (no key from an unmeasured file)', async () => {
    const env = await environmentFromEnv({ FIRN_TEE: 'tdx' }, new Uint8Array(32), {
      tsmFs: fakeKernel(),
    });
    expect(env.provider.teeType).toBe('tdx');
    await expect(createEnclaveProgram(env).handle('init', {})).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
    });
    // A host-set broker URL is no key source: only a broker the measured image pins is.
    const hostNamed = await environmentFromEnv(
      { FIRN_TEE: 'tdx', FIRN_KMS_URL: 'http://127.0.0.1:1', FIRN_KMS_ADDRESS: `0x${'11'.repeat(20)}` },
      new Uint8Array(32),
      { tsmFs: fakeKernel() },
    );
    await expect(createEnclaveProgram(hostNamed).handle('init', {})).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
    });
    // An image that pins a broker needs to be told where it listens.
    await expect(
      environmentFromEnv({ FIRN_TEE: 'tdx' }, new Uint8Array(32), {
        tsmFs: fakeKernel(),
        keyBroker: { address: `0x${'11'.repeat(20)}` },
      }),
    ).rejects.toMatchObject({ code: 'E_INVALID_INPUT', message: expect.stringContaining('--kms-url') });
  });

  it('a TD replaying a captured quote is refused by the broker even with an allow-listed measurement', async () => {
    const v = verifierFor('tdx');
    const facts = await v.verify(v.parse(TDX), { now: NOW, collateral });
    const root = await createSimulatedRoot();
    const logs: string[] = [];
    const d = new KmsDaemon({
      dataDir: mkdtempSync(join(tmpdir(), 'firn-kms-td-')),
      platform: await createSimulatedPlatform(root),
      policy: { ...PRODUCTION_POLICY, measurementAllowList: [bytesToHex(facts.measurement)] },
      collateral,
      logger: createLogger({}, { write: (l) => logs.push(l) }),
      now: () => NOW,
    });
    daemons.push(d);
    const info = await d.start();
    const env = await environmentFromEnv({ FIRN_TEE: 'tdx', FIRN_KMS_URL: info.url }, new Uint8Array(32), {
      tsmFs: fakeKernel(),
      keyBroker: { address: info.address },
    });
    const program = createEnclaveProgram(env);
    expect((await program.handle('hello', {})) as { measurement: string }).toMatchObject({
      measurement: bytesToHex(facts.measurement),
    });
    await expect(program.handle('init', {})).rejects.toMatchObject({ code: 'E_EVIDENCE_BINDING' });
    expect(logs.join('')).toContain('sealing key refused');
    expect(logs.join('')).not.toContain('sealing key released');
  });
});
