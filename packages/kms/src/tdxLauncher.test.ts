import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRODUCTION_POLICY, verifierFor } from '@firn/attestation';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { bytesToHex, sharedPath } from '@firn/core';
import { createEnclaveProgram } from '@firn/enclave';
import { createLogger } from '@firn/node';
import { afterAll, describe, expect, it } from 'vitest';
import { environmentFromEnv } from '../../enclave/src/evidence/environmentFromEnv.ts';
import { capturedTdxQuote, fakeTsmKernel } from '../../enclave/test/fakeTsmKernel.ts';
import { KmsDaemon } from './kmsDaemon.ts';

/**
 * The enclave started with FIRN_TEE=tdx over a fake configfs-tsm that returns a captured REAL TDX
 * v4 quote (shared vectors, with Intel's collateral at its pinned time). It names itself from the
 * quote; without a broker it has no sealing key; with the broker, the broker appraises the TD's
 * key request and refuses it, because a captured quote cannot bind the broker's fresh nonce and
 * the TD's ephemeral key. Not covered: a real TD whose kernel quotes the report data written to
 * inblob (no TDX hardware here), so the release path on TDX is tested only on the simulated TEE.
 */
const TDX = capturedTdxQuote();
const NOW = 1752919234;
const collateral = JSON.parse(
  readFileSync(sharedPath('vectors', 'attestation', 'phala-dcap-qvl', 'tdx_quote_collateral.json'), 'utf8'),
);

const daemons: KmsDaemon[] = [];
afterAll(async () => {
  for (const d of daemons) await d.stop();
});

describe('--tee tdx: the enclave in a TD (configfs-tsm) with its sealing key from the broker', () => {
  it('has no sealing key without a broker (no key from an unmeasured file)', async () => {
    const env = await environmentFromEnv({ FIRN_TEE: 'tdx' }, new Uint8Array(32), {
      tsmFs: fakeTsmKernel(),
    });
    expect(env.provider.teeType).toBe('tdx');
    await expect(createEnclaveProgram(env).handle('init', {})).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
    });
    // A host-set broker URL is no key source: only a broker the measured image pins is.
    const hostNamed = await environmentFromEnv(
      { FIRN_TEE: 'tdx', FIRN_KMS_URL: 'http://127.0.0.1:1', FIRN_KMS_ADDRESS: `0x${'11'.repeat(20)}` },
      new Uint8Array(32),
      { tsmFs: fakeTsmKernel() },
    );
    await expect(createEnclaveProgram(hostNamed).handle('init', {})).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
    });
    // An image that pins a broker needs to be told where it listens.
    await expect(
      environmentFromEnv({ FIRN_TEE: 'tdx' }, new Uint8Array(32), {
        tsmFs: fakeTsmKernel(),
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
      tsmFs: fakeTsmKernel(),
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
