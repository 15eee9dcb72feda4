import { generateKeyPairSync, sign } from 'node:crypto';
import { isFirnError } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import {
  clearSignatureThreadKeys,
  ecdsaVerifyOnThread,
  stopSignatureThread,
  takeOver,
} from './signatureThread.ts';
import { clearDcapCaches, verifyDcapQuote } from './verifyDcapQuote.ts';

/**
 * The signature thread of 'thread' mode (decision 1450): each check made exactly once, by the
 * thread or taken over by the calling thread, with the same result; the bytes checked are those
 * given when the check was queued; a thread that stops never lets a call pass.
 */
const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const data = Buffer.from('signed by the TCB signing key, say');
const der = sign('sha256', data, privateKey);
const raw = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });

afterAll(() => stopSignatureThread());

describe('ecdsaVerifyOnThread', () => {
  it('checks DER and raw signatures, and refuses forged ones, wrong keys and malformed raw lengths', async () => {
    expect(await ecdsaVerifyOnThread(publicKey, data, der, 'der')).toBe(true);
    expect(await ecdsaVerifyOnThread(publicKey, data, raw, 'ieee-p1363')).toBe(true);
    const forged = Buffer.from(raw);
    forged[40]! ^= 1;
    expect(await ecdsaVerifyOnThread(publicKey, data, forged, 'ieee-p1363')).toBe(false);
    expect(await ecdsaVerifyOnThread(other.publicKey, data, der, 'der')).toBe(false);
    expect(await ecdsaVerifyOnThread(publicKey, data, der.subarray(0, 10), 'der')).toBe(false);
    expect(ecdsaVerifyOnThread(publicKey, data, raw.subarray(0, 63), 'ieee-p1363')).toBe(false);
  });

  it('checks the bytes given when queued, not what the caller writes into its buffers afterwards', async () => {
    const d = Buffer.from(data);
    const s = Buffer.from(raw);
    const good = ecdsaVerifyOnThread(publicKey, d, s, 'ieee-p1363');
    d.fill(0x41);
    expect(await good).toBe(true);
    const bad = ecdsaVerifyOnThread(publicKey, d, s, 'ieee-p1363');
    d.set(data);
    expect(await bad).toBe(false);
  });

  it('a check taken over by the calling thread gives the same result, forged or not, and is made once', async () => {
    for (let round = 0; round < 20; round++) {
      const forged = Buffer.from(der);
      forged[forged.length - 3]! ^= 1;
      const rs = [
        ecdsaVerifyOnThread(publicKey, data, der, 'der'),
        ecdsaVerifyOnThread(publicKey, data, forged, 'der'),
        ecdsaVerifyOnThread(other.publicKey, data, raw, 'ieee-p1363'),
        ecdsaVerifyOnThread(publicKey, data, raw, 'ieee-p1363'),
      ];
      takeOver(rs);
      expect(await Promise.all(rs)).toEqual([true, false, false, true]);
    }
  });

  it('after the keys are forgotten (clearDcapCaches), a key is sent again and checks go on', async () => {
    expect(await ecdsaVerifyOnThread(publicKey, data, der, 'der')).toBe(true);
    clearSignatureThreadKeys();
    expect(await ecdsaVerifyOnThread(publicKey, data, der, 'der')).toBe(true);
    expect(await ecdsaVerifyOnThread(other.publicKey, data, der, 'der')).toBe(false);
  });

  it('a thread stopped with checks in flight fails them with E_INTERNAL, never a result; the next check starts a new thread', async () => {
    const inFlight = Array.from({ length: 50 }, () => ecdsaVerifyOnThread(publicKey, data, der, 'der'));
    await stopSignatureThread();
    const settled = await Promise.allSettled(inFlight);
    for (const s of settled) {
      if (s.status === 'fulfilled')
        expect(s.value).toBe(true); // answered before the stop
      else expect(isFirnError(s.reason) && s.reason.code).toBe('E_INTERNAL');
    }
    expect(settled.some((s) => s.status === 'rejected')).toBe(true);
    expect(await ecdsaVerifyOnThread(publicKey, data, der, 'der')).toBe(true);
  });
});

describe("verifyDcapQuote 'thread'", () => {
  it('a verification whose signature thread stops mid-call fails E_INTERNAL, never with a verdict; the next passes', async () => {
    const quote = vector(VECTORS.tdx.quote);
    const opts = {
      collateral: vectorJson(VECTORS.tdx.collateral),
      now: VECTORS.tdx.now,
      signatureThreads: 'thread' as const,
    };
    clearDcapCaches();
    // Queue a backlog so the call's own checks are still waiting when the thread stops.
    const backlog = Array.from({ length: 200 }, () => ecdsaVerifyOnThread(publicKey, data, der, 'der'));
    const p = verifyDcapQuote(quote, opts).then(
      (v) => v.tcbStatus,
      (e: unknown) => (isFirnError(e) ? e.code : 'other'),
    );
    void stopSignatureThread();
    await Promise.allSettled(backlog);
    // The call made its checks itself once it had nothing else to do (takeOver), or failed closed.
    expect(['UpToDate', 'E_INTERNAL']).toContain(await p);
    clearDcapCaches();
    expect((await verifyDcapQuote(quote, opts)).tcbStatus).toBe('UpToDate');
  });
});
