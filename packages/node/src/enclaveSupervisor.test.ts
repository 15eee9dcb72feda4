import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appraiseEvidence, certificateDer, DEV_POLICY } from '@firn/attestation';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { bytesToHex } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { buildEnclaveBundle } from './enclaveBundle.ts';
import { EnclaveSupervisor } from './enclaveSupervisor.ts';
import { createLogger } from './logger.ts';

const dir = mkdtempSync(join(tmpdir(), 'firn-sup-'));
const root = await createSimulatedRoot();
const platformPath = join(dir, 'platform.json');
writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(root)));
const bundle = await buildEnclaveBundle(join(dir, 'enclave.mjs'));
const logs: string[] = [];
const logger = createLogger({}, { write: (l) => logs.push(l) });
const sup = new EnclaveSupervisor({
  bundlePath: bundle.path,
  env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
  logger,
});

afterAll(() => sup.stop());

interface Identity {
  enclaveId: string;
  enclaveAddress: string;
  kemPublicKey: string;
  measurement: string;
  sealedKeys: unknown;
}

describe('enclave process under the supervisor (simulated TEE)', () => {
  let first: Identity;

  it('generates keys inside the enclave and returns only a sealed blob', async () => {
    sup.start();
    await sup.ready();
    first = await sup.call<Identity>('init', {});
    expect(first.measurement).toBe(bytesToHex(bundle.measurement));
    const blob = JSON.stringify(first.sealedKeys);
    expect(blob).toMatch(/"ct":"0x[0-9a-f]+"/);
    expect(logs.join('')).not.toContain(blob.slice(20, 60));
  });

  it('produces evidence for a fresh nonce that the dev policy accepts', async () => {
    const nonce = randomBytes(32);
    const ev = await sup.call('attest', { nonce: bytesToHex(nonce) });
    const a = await appraiseEvidence(ev, {
      now: Math.floor(Date.now() / 1000),
      policy: DEV_POLICY,
      expectedNonce: nonce,
      roots: { simulated: [certificateDer(root.certificatePem)] },
    });
    expect(a.ok).toBe(true);
  });

  it('keeps the same identity after SIGKILL and restart, by unsealing the blob', async () => {
    const restarted = new Promise((r) => sup.once('restarted', r));
    process.kill(sup.pid!, 'SIGKILL');
    await restarted;
    await sup.ready();
    const again = await sup.call<Identity>('init', { sealedKeys: first.sealedKeys });
    expect(again.enclaveId).toBe(first.enclaveId);
    expect(again.enclaveAddress).toBe(first.enclaveAddress);
    expect(again.kemPublicKey).toBe(first.kemPublicKey);
  });

  it('refuses a sealed blob that was altered', async () => {
    const blob = first.sealedKeys as { v: number; iv: string; ct: string };
    const bad = { ...blob, ct: blob.ct.slice(0, -2) + (blob.ct.endsWith('00') ? '01' : '00') };
    await expect(sup.call('init', { sealedKeys: bad })).rejects.toMatchObject({ code: 'E_SEAL' });
  });

  it('refuses unknown methods with a protocol error', async () => {
    await expect(sup.call('nope', {})).rejects.toMatchObject({ code: 'E_ENCLAVE_PROTOCOL' });
  });
});
