import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ecdsaVerifyOnThread,
  stopSignatureThread,
  takeOver,
} from '../../packages/attestation/src/dcap/signatureThread.ts';

// Promise (decision 1450, brief): in 'thread' mode a check is never skipped, whichever way the
// race between the thread and the calling thread goes, and verdicts equal the other modes. Each
// check owns the claim slot `id % 65,536`. A check taken over by the calling thread leaves the
// in-flight count at once, but its message still waits in the thread's queue. When the thread lags
// (busy with earlier checks) and 65,536 further checks are queued and taken over meanwhile, a new
// check re-arms the slot of a message still queued: the thread then claims the slot for the old
// message (making a check no one waits for), and answers "skipped" for the live one, which
// resolves FALSE for a valid signature (or the other way round: the caller claims the slot of a
// live check the thread has not reached, and the live check is answered false).

afterAll(() => stopSignatureThread());

describe("DCAP 'thread' mode: claim slots reused while their messages are still queued", () => {
  it('every valid signature queued resolves true, however many checks were taken over meanwhile', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const data = Buffer.from('signed by the PCK key, say');
    const der = sign('sha256', data, privateKey);
    // Keep the thread busy: 30,000 real checks (~2 s of its time), well under the in-flight bound.
    const real: Promise<boolean>[] = [];
    for (let i = 0; i < 30_000; i++)
      real.push(Promise.resolve(ecdsaVerifyOnThread(publicKey, data, der, 'der')));
    // Meanwhile 65,536 cheap checks (a malformed DER signature), each taken over by the calling
    // thread at once, as verifications that reach `settle` first do.
    const junk = Buffer.from([0x30, 0x00]);
    for (let n = 0; n < 65_536; n += 1_000) {
      const chunk = [];
      for (let i = 0; i < 1_000; i++) chunk.push(ecdsaVerifyOnThread(publicKey, data, junk, 'der'));
      takeOver(chunk);
    }
    const results = await Promise.all(real);
    expect(results.filter((r) => !r).length).toBe(0);
  }, 120_000);
});
