import { createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { FirnError, isFirnError } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { SignatureChecks } from './signatureChecks.ts';
import { ecdsaVerifyOnThread, stopSignatureThread, takeOver } from './signatureThread.ts';
import type { LazyPublicKey } from './x509.ts';

/**
 * Decision 1490: on the signature thread a certificate's key not yet imported travels as its P-256
 * point and is imported there. An import that fails there must fail exactly as the synchronous
 * order fails: with the key's own error, at that check's place (an earlier failing check still
 * wins, a later one loses), and never as a verdict.
 */
const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const data = Buffer.from('TCB info text, say');
const raw = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
const jwk = publicKey.export({ format: 'jwk' }) as { x: string; y: string };
const goodPoint = new Uint8Array(
  Buffer.concat([Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]),
);
const offCurve = goodPoint.slice();
offCurve[63]! ^= 1;

/** A LazyPublicKey as x509's, counting imports made on this thread. */
function lazy(point: Uint8Array): LazyPublicKey & { imports: number } {
  let key: ReturnType<typeof createPublicKey> | undefined;
  const get = () => {
    f.imports++;
    if (key === undefined) {
      try {
        key = createPublicKey({
          key: {
            kty: 'EC',
            crv: 'P-256',
            x: Buffer.from(point.subarray(0, 32)).toString('base64url'),
            y: Buffer.from(point.subarray(32)).toString('base64url'),
          },
          format: 'jwk',
        });
      } catch (e) {
        throw new FirnError('E_EVIDENCE_MALFORMED', 'certificate public key cannot be imported', {
          cause: e,
        });
      }
    }
    return key;
  };
  const f = Object.assign(get, { point, imported: () => key, imports: 0 });
  return f;
}

async function codeOf(p: unknown): Promise<string> {
  try {
    await p;
    return 'passed';
  } catch (e) {
    return isFirnError(e) ? `${e.code}: ${e.message}` : 'foreign';
  }
}

afterAll(() => stopSignatureThread());

describe('signature thread: keys imported from their point (decision 1490)', () => {
  it('checks with a key imported on the thread, without importing it here', async () => {
    const k = lazy(goodPoint);
    expect(await ecdsaVerifyOnThread(k, data, raw, 'ieee-p1363')).toBe(true);
    const forged = Buffer.from(raw);
    forged[7]! ^= 1;
    expect(await ecdsaVerifyOnThread(k, data, forged, 'ieee-p1363')).toBe(false);
    expect(k.imports).toBe(0);
  });

  it('a point off the curve fails with the key import error, never a verdict', async () => {
    const k = lazy(offCurve);
    const r = ecdsaVerifyOnThread(k, data, raw, 'ieee-p1363');
    expect(r).toBeInstanceOf(Promise);
    expect(await codeOf(r)).toBe('E_EVIDENCE_MALFORMED: certificate public key cannot be imported');
  });

  it('taken over here, the same key import error', async () => {
    const k = lazy(offCurve);
    const r = ecdsaVerifyOnThread(k, data, raw, 'ieee-p1363');
    takeOver([r]);
    expect(await codeOf(r)).toBe('E_EVIDENCE_MALFORMED: certificate public key cannot be imported');
  });

  it('a malformed raw signature meets the import error first, as the synchronous order does', () => {
    expect(() => ecdsaVerifyOnThread(lazy(offCurve), data, raw.subarray(1), 'ieee-p1363')).toThrow(
      /cannot be imported/,
    );
    expect(ecdsaVerifyOnThread(lazy(goodPoint), data, raw.subarray(1), 'ieee-p1363')).toBe(false);
  });

  it('settle reports the first failure in registration order, a failed import included', async () => {
    const forged = Buffer.from(raw);
    forged[9]! ^= 1;
    const err = (m: string) => () => new FirnError('E_EVIDENCE_SIGNATURE', m);
    // A bad signature queued before the key that cannot be imported: the signature's error.
    let c = new SignatureChecks(ecdsaVerifyOnThread);
    c.raw(publicKey, data, forged, err('earlier signature is invalid'));
    c.raw(lazy(offCurve), data, raw, err('never reached'));
    expect(await codeOf(c.settle())).toBe('E_EVIDENCE_SIGNATURE: earlier signature is invalid');
    // The key that cannot be imported queued first: its import error, not the later bad signature.
    c = new SignatureChecks(ecdsaVerifyOnThread);
    c.raw(lazy(offCurve), data, raw, err('never reached'));
    c.raw(publicKey, data, forged, err('later signature is invalid'));
    expect(await codeOf(c.settle())).toBe('E_EVIDENCE_MALFORMED: certificate public key cannot be imported');
    // The same checks synchronously: the same two errors.
    c = new SignatureChecks(undefined);
    expect(() => {
      c.raw(publicKey, data, forged, err('earlier signature is invalid'));
      c.raw(lazy(offCurve), data, raw, err('never reached'));
    }).toThrow('earlier signature is invalid');
    c = new SignatureChecks(undefined);
    expect(() => {
      c.raw(lazy(offCurve), data, raw, err('never reached'));
      c.raw(publicKey, data, forged, err('later signature is invalid'));
    }).toThrow(/cannot be imported/);
  });
});
