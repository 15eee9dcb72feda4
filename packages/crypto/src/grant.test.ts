import { randomBytes } from 'node:crypto';
import { bytesToHex, type Hex, isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { createGrant, type Grant, grantToJson, openGrantKey, parseGrant, verifyGrant } from './grant.ts';
import { generateKemKeyPair } from './hpke.ts';
import { generateSigningKey } from './signatures.ts';

const rand32 = (): Hex => bytesToHex(new Uint8Array(randomBytes(32)));
const NOW = 1_800_000_000;

function code(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    return isFirnError(e) ? e.code : `foreign:${String(e)}`;
  }
}

async function setup(scope: { jobId?: Hex; workloadHash?: Hex } = {}) {
  const owner = generateSigningKey();
  const kem = await generateKemKeyPair();
  const dataKey = new Uint8Array(randomBytes(32));
  const artifactId = rand32();
  const enclaveId = rand32();
  const grant = await createGrant({
    ownerPrivateKey: owner.privateKey,
    artifactId,
    dataKey,
    enclaveId,
    enclaveKemPublicKey: kem.publicKey,
    scope,
    issuedAt: NOW - 60,
    expiresAt: NOW + 3600,
  });
  return { owner, kem, dataKey, artifactId, enclaveId, grant };
}

// Not covered: that the owner owns the artifact (checked where uploads are recorded).
describe('grants', () => {
  it('verifies, round-trips through JSON and unwraps the data key', async () => {
    const jobId = rand32();
    const s = await setup({ jobId });
    const ctx = { artifactId: s.artifactId, enclaveId: s.enclaveId, jobId, now: NOW };
    expect(verifyGrant(s.grant, ctx)).toEqual({ owner: s.owner.address });
    const back = parseGrant(grantToJson(s.grant));
    expect(back).toEqual(s.grant);
    expect(verifyGrant(back, { ...ctx, owner: s.owner.address })).toEqual({ owner: s.owner.address });
    expect(await openGrantKey(back, s.kem.privateKey)).toEqual(s.dataKey);
  });

  it('refuses wrong artifact, enclave, job, workload and KEM key as scope errors', async () => {
    const jobId = rand32();
    const workloadHash = rand32();
    const s = await setup({ jobId, workloadHash });
    const ok = { artifactId: s.artifactId, enclaveId: s.enclaveId, jobId, workloadHash, now: NOW };
    expect(code(() => verifyGrant(s.grant, ok))).toBe('ok');
    expect(code(() => verifyGrant(s.grant, { ...ok, artifactId: rand32() }))).toBe('E_GRANT_SCOPE');
    expect(code(() => verifyGrant(s.grant, { ...ok, enclaveId: rand32() }))).toBe('E_GRANT_SCOPE');
    expect(code(() => verifyGrant(s.grant, { ...ok, jobId: rand32() }))).toBe('E_GRANT_SCOPE');
    const { jobId: _j, ...noJob } = ok;
    expect(code(() => verifyGrant(s.grant, noJob))).toBe('E_GRANT_SCOPE');
    expect(code(() => verifyGrant(s.grant, { ...ok, workloadHash: rand32() }))).toBe('E_GRANT_SCOPE');
    const other = await generateKemKeyPair();
    expect(code(() => verifyGrant(s.grant, { ...ok, enclaveKemPublicKey: other.publicKey }))).toBe(
      'E_GRANT_SCOPE',
    );
    await expect(openGrantKey(s.grant, other.privateKey)).rejects.toMatchObject({ code: 'E_GRANT_SCOPE' });
  });

  it('expires exactly at expiresAt', async () => {
    const s = await setup();
    const ctx = { artifactId: s.artifactId, enclaveId: s.enclaveId };
    expect(code(() => verifyGrant(s.grant, { ...ctx, now: NOW + 3599 }))).toBe('ok');
    expect(code(() => verifyGrant(s.grant, { ...ctx, now: NOW + 3600 }))).toBe('E_GRANT_EXPIRED');
  });

  it('refuses any altered field or signature, and a claimed owner that did not sign', async () => {
    const jobId = rand32();
    const s = await setup({ jobId });
    const ctx = { artifactId: s.artifactId, enclaveId: s.enclaveId, jobId, now: NOW };
    const flip = (h: Hex): Hex =>
      `0x${(Number.parseInt(h.slice(2, 4), 16) ^ 1).toString(16).padStart(2, '0')}${h.slice(4)}`;
    const variants: Grant[] = [
      { ...s.grant, expiresAt: s.grant.expiresAt + 1 },
      // The chain time is signed too: a host cannot move it back to make the grant look older.
      { ...s.grant, issuedAt: s.grant.issuedAt - 1 },
      { ...s.grant, enc: flip(s.grant.enc) },
      { ...s.grant, wrappedKey: flip(s.grant.wrappedKey) },
      { ...s.grant, enclaveKemPublicKey: flip(s.grant.enclaveKemPublicKey) },
      { ...s.grant, signature: flip(s.grant.signature) },
      { ...s.grant, owner: generateSigningKey().address },
      { ...s.grant, scope: {} },
    ];
    for (const v of variants) expect(code(() => verifyGrant(v, ctx))).toBe('E_GRANT_INVALID');
    expect(code(() => verifyGrant(s.grant, { ...ctx, owner: generateSigningKey().address }))).toBe(
      'E_GRANT_INVALID',
    );
    // Scope and expiry are also bound into the key wrap: a re-signed grant with other terms still
    // cannot unwrap the key.
    await expect(
      openGrantKey({ ...s.grant, expiresAt: s.grant.expiresAt + 1 }, s.kem.privateKey),
    ).rejects.toMatchObject({
      code: 'E_DECRYPT',
    });
    await expect(
      openGrantKey({ ...s.grant, issuedAt: s.grant.issuedAt + 1 }, s.kem.privateKey),
    ).rejects.toMatchObject({
      code: 'E_DECRYPT',
    });
  });

  it('carries the chain time it was made at, never after its expiry', async () => {
    const s = await setup();
    expect(s.grant.version).toBe(2);
    expect(s.grant.issuedAt).toBe(NOW - 60);
    expect(code(() => parseGrant({ ...s.grant, issuedAt: s.grant.expiresAt + 1 }))).toBe('E_GRANT_INVALID');
    expect(code(() => parseGrant({ ...s.grant, issuedAt: 0 }))).toBe('E_GRANT_INVALID');
    const { issuedAt: _i, ...noIssued } = s.grant;
    expect(code(() => parseGrant(noIssued))).toBe('E_GRANT_INVALID');
    // A version 1 grant (no issuedAt) is refused, not read with a made-up time.
    expect(code(() => parseGrant({ ...noIssued, version: 1 }))).toBe('E_GRANT_INVALID');
  });

  it('parseGrant refuses oversize, unknown fields and bad shapes', async () => {
    const s = await setup();
    expect(code(() => parseGrant('x'.repeat(5000)))).toBe('E_GRANT_INVALID');
    expect(code(() => parseGrant({ ...s.grant, extra: 1 }))).toBe('E_GRANT_INVALID');
    expect(code(() => parseGrant({ ...s.grant, version: 3 }))).toBe('E_GRANT_INVALID');
    expect(code(() => parseGrant({ ...s.grant, enc: '0x1234' }))).toBe('E_GRANT_INVALID');
    expect(code(() => parseGrant({ ...s.grant, expiresAt: 1.5 }))).toBe('E_GRANT_INVALID');
    expect(code(() => parseGrant({ ...s.grant, scope: { other: '0x' } }))).toBe('E_GRANT_INVALID');
    expect(code(() => parseGrant('not json'))).toBe('E_GRANT_INVALID');
  });
});
