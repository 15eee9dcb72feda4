import { randomBytes } from 'node:crypto';
import type { CloseSessionResult } from '@firn/enclave';
import { describe, expect, it } from 'vitest';
import { sessionProgramHarness } from './sessionProgramHarness.ts';
import { SessionRelay } from '../../packages/node/src/jobs/sessionRelay.ts';

// A stranger ends another requester's warm session with one junk close.
//
// The session id is the public jobId, and whatever reaches the enclave's closeSession as `auth` is
// opened with `endpoint.open(auth, isCloseMessage, ahead = true)`. With `ahead`, ANY sequence
// number at or past the next one passes the sequence check, so the sender need not know how far
// the session is; the AES-GCM tag then fails. When a failed close ended the endpoint's receiving
// side (as a forged request does, decision 1715), every later request of the genuine requester was
// refused E_DECRYPT ("an earlier message did not authenticate"): the session was dead, and the
// sender held no session key at all.
//
// Safe behaviour (docs/decisions/1773-close-auth-never-ends-a-session.md): a close that does not
// authenticate is refused (E_UNAUTHENTICATED) and changes nothing; the session keeps answering the
// requester's requests, on the enclave's pipe and on the session child alike.

const { program, open, x, close } = await sessionProgramHarness('forged-close', 28);

/** A session message header (version 1, kind request 0x11, seq) then junk "ciphertext and tag". */
function junkClose(seq: bigint): string {
  const m = new Uint8Array(10 + 512 + 16);
  m[0] = 1;
  m[1] = 0x11;
  new DataView(m.buffer).setBigUint64(2, seq, false);
  m.set(randomBytes(512 + 16), 10);
  return Buffer.from(m).toString('base64');
}

describe('attack: a stranger’s junk close ends someone else’s session', () => {
  it('pipe-served session: a forged close at a future seq is refused and the session keeps serving', async () => {
    const { jobId, codec } = await open(false);
    const a = codec.sealRequest(x([1, 2, 3]));
    const ra = (await program.handle('sessionRequest', {
      sessionId: jobId,
      message: Buffer.from(a).toString('base64'),
    })) as { message: string };
    codec.openResponse(a, Buffer.from(ra.message, 'base64'));

    // The stranger: a guessed-far-ahead seq, junk bytes. Refused, as it should be...
    await expect(
      program.handle('closeSession', { sessionId: jobId, auth: junkClose(1n << 40n) }),
    ).rejects.toMatchObject({ code: 'E_UNAUTHENTICATED' });

    // ...but the requester's next request must still be answered.
    const b = codec.sealRequest(x([3, 2, 1]));
    const rb = (await program.handle('sessionRequest', {
      sessionId: jobId,
      message: Buffer.from(b).toString('base64'),
    })) as { message: string };
    expect(codec.openResponse(b, Buffer.from(rb.message, 'base64')).y!.dims).toEqual([1, 2]);
    const closed = (await close(jobId, codec)) as CloseSessionResult;
    expect(closed.requests).toBe(2);
  });

  it('directly served session: a forged close at a future seq is refused and the child keeps serving', async () => {
    const { r, jobId, codec } = await open(true, null);
    const relay = await SessionRelay.connect(r.endpoint!.path, r.endpoint!.token);
    try {
      const a = codec.sealRequest(x([1, 2, 3]));
      codec.openResponse(a, await relay.send(a));
      await expect(
        program.handle('closeSession', { sessionId: jobId, auth: junkClose(1n << 40n) }),
      ).rejects.toMatchObject({ code: 'E_UNAUTHENTICATED' });
      const b = codec.sealRequest(x([3, 2, 1]));
      expect(codec.openResponse(b, await relay.send(b)).y!.dims).toEqual([1, 2]);
      const closed = (await close(jobId, codec)) as CloseSessionResult;
      expect(closed.requests).toBe(2);
    } finally {
      relay.close();
    }
  });
});
