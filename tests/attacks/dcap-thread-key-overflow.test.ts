import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { VECTORS, vector, vectorJson } from '../../packages/attestation/test/dcap/testVectors.ts';
import {
  ecdsaVerifyOnThread,
  stopSignatureThread,
} from '../../packages/attestation/src/dcap/signatureThread.ts';
import { clearDcapCaches, verifyDcapQuote } from '../../packages/attestation/src/dcap/verifyDcapQuote.ts';

// Promise (decision 1450, brief): 'thread' gives the same verdicts as the other modes on every
// input. The signature thread keeps at most 4,096 keys and then forgets ALL of them, while the
// calling thread still believes every key it sent once in this epoch is held there (it sends a
// key only on its first use per epoch). Once 4,096 distinct keys went through in one epoch (each
// new quote's attestation key and every re-parsed certificate is a new KeyObject), every check on
// an older key (the pinned Intel root, a cached TCB signing key) answers "lost a key": E_INTERNAL
// for honest inputs the other modes pass, until clearDcapCaches is called.

afterAll(() => stopSignatureThread());

const data = Buffer.from('signed data');

/** `n` checks on the thread, each under a fresh key (the keys of `n` other quotes, say). */
async function flood(n: number): Promise<void> {
  const batch: Promise<boolean>[] = [];
  for (let i = 0; i < n; i++) {
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const r = ecdsaVerifyOnThread(kp.publicKey, data, sign('sha256', data, kp.privateKey), 'der');
    batch.push(Promise.resolve(r));
    if (batch.length >= 256) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
}

describe("DCAP 'thread' mode after many distinct keys", () => {
  it('a key used before 4,096 others still checks its signatures (not E_INTERNAL "lost a key")', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = sign('sha256', data, privateKey);
    expect(await ecdsaVerifyOnThread(publicKey, data, der, 'der')).toBe(true);
    await flood(4096);
    // Same key, same signature: true in every mode.
    await expect(Promise.resolve(ecdsaVerifyOnThread(publicKey, data, der, 'der'))).resolves.toBe(true);
  }, 120_000);

  it('an honest quote verified cold after 4,096 other keys in the epoch gets its verdict, as in the other modes', async () => {
    clearDcapCaches();
    const opts = (v: typeof VECTORS.sgx | typeof VECTORS.tdx) => ({
      collateral: vectorJson(v.collateral),
      now: v.now,
      signatureThreads: 'thread' as const,
    });
    expect((await verifyDcapQuote(vector(VECTORS.sgx.quote), opts(VECTORS.sgx))).tcbStatus).toBeDefined();
    await flood(4096);
    // The TDX quote has not been verified in this epoch (cold), but shares the pinned Intel root.
    const sync = await verifyDcapQuote(vector(VECTORS.tdx.quote), {
      ...opts(VECTORS.tdx),
      signatureThreads: 'caller',
    });
    clearDcapCaches();
    expect((await verifyDcapQuote(vector(VECTORS.sgx.quote), opts(VECTORS.sgx))).tcbStatus).toBeDefined();
    await flood(4096);
    const threaded = await verifyDcapQuote(vector(VECTORS.tdx.quote), opts(VECTORS.tdx)).then(
      (v) => v.tcbStatus,
      (e: unknown) => `${(e as { code?: string }).code}: ${(e as Error).message}`,
    );
    expect(threaded).toBe(sync.tcbStatus);
  }, 180_000);
});
