import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appraiseEvidence, certificateDer, DEV_POLICY } from '@firn/attestation';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { bytesToHex, measurementDigest } from '@firn/core';
import { createEnclaveProgram, createSimulatedProvider, requestKmsSealingKey } from '@firn/enclave';
import { createLogger } from '@firn/node';
import { afterAll, describe, expect, it } from 'vitest';
import { KmsDaemon } from '../../packages/kms/src/kmsDaemon.ts';

// A rogue machine (its host holds its own simulated platform file, as decision 0002 allows) asks
// the key broker for the sealing key of the same allow-listed code on ANOTHER machine. The key is
// derived from (teeType, measurement, platformId); the platform id must be the attested machine's,
// as on TDX where the PPID comes from the Intel-signed PCK certificate.
const sha = (s: string) => new Uint8Array(createHash('sha256').update(s).digest());
const CODE = sha('firn enclave build A');
const root = await createSimulatedRoot();
const kmsMachine = await createSimulatedPlatform(root);
const victim = await createSimulatedPlatform(root);
const rogue = await createSimulatedPlatform(root);
const roots = { simulated: [certificateDer(root.certificatePem)] };
const policy = { ...DEV_POLICY, measurementAllowList: [bytesToHex(measurementDigest('simulated', [CODE]))] };
const daemon = new KmsDaemon({
  dataDir: mkdtempSync(join(tmpdir(), 'firn-kms-attack-')),
  platform: kmsMachine,
  policy,
  roots,
  logger: createLogger({ component: 'kms' }, { write: () => {} }),
});
const info = await daemon.start();
afterAll(() => daemon.stop());

describe("attack: a rogue machine claims another machine's platform id", () => {
  it('a quote signed by one platform attestation key cannot name another platform', async () => {
    // The rogue signs with its own attestation key (and certificate) but writes the victim's id.
    const forged = { ...rogue, platformId: victim.platformId };
    const nonce = new Uint8Array(32).fill(9);
    const program = createEnclaveProgram({
      provider: createSimulatedProvider(forged, CODE),
      measurementRegisters: [CODE],
      platformId: Buffer.from(victim.platformId.slice(2), 'hex'),
    });
    await program.handle('init', {});
    const ev = await program.handle('attest', { nonce: bytesToHex(nonce) });
    const a = await appraiseEvidence(ev, {
      now: Math.floor(Date.now() / 1000),
      policy,
      expectedNonce: nonce,
      roots,
    });
    expect(a.ok).toBe(false);
  });

  it("the key broker does not hand the rogue the victim's sealing key", async () => {
    const victimKey = await requestKmsSealingKey({
      url: info.url,
      brokerAddress: info.address,
      provider: createSimulatedProvider(victim, CODE),
    });
    let stolen: Uint8Array | undefined;
    try {
      stolen = await requestKmsSealingKey({
        url: info.url,
        brokerAddress: info.address,
        provider: createSimulatedProvider({ ...rogue, platformId: victim.platformId }, CODE),
      });
    } catch {
      stolen = undefined;
    }
    expect(stolen === undefined ? undefined : bytesToHex(stolen)).not.toBe(bytesToHex(victimKey));
  });
});
