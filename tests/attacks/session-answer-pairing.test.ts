import type { CloseSessionResult } from '@firn/enclave';
import { describe, expect, it } from 'vitest';
import { sessionProgramHarness } from './sessionProgramHarness.ts';
import { tinyLinearReference } from '../../packages/enclave/test/testModels.ts';
import { SessionRelay } from '../../packages/node/src/jobs/sessionRelay.ts';

// The attack: a malicious host hands one of the requester's genuine, not yet delivered request
// messages to closeSession as the "close auth". The enclave (or the session's child) opens it under
// the session keys, sees it is not the close tag and answers E_UNAUTHENTICATED ("the session keeps
// serving") — but the request's sequence number has been consumed without an answer. The host then
// relays the requester's NEXT request, and its answer carries the response sequence number the
// requester expects for the swallowed one: the requester accepts the answer to another request as
// the answer to its own. Responses are paired with requests only by their counters, so one
// consumed-but-unanswered request shifts every later answer by one, silently.

const { program, model, open: openSession } = await sessionProgramHarness('swallow', 5);

/** A session and how to send it one message: over the child's endpoint (Unix socket) or the enclave pipe. */
async function open(direct: boolean) {
  const { jobId, r, codec } = await openSession(direct, null);
  let send: (m: Uint8Array) => Promise<Uint8Array>;
  let done = () => {};
  if (direct) {
    const relay = await SessionRelay.connect(r.endpoint!.path, r.endpoint!.token);
    send = (m) => relay.send(m);
    done = () => relay.close();
  } else {
    send = async (m) => {
      const o = (await program.handle('sessionRequest', {
        sessionId: jobId,
        message: Buffer.from(m).toString('base64'),
      })) as { message: string };
      return new Uint8Array(Buffer.from(o.message, 'base64'));
    };
  }
  return { jobId, codec, send, done };
}

const x = (v: number[]) => ({
  x: { type: 'float32' as const, dims: [v.length / 3, 3], data: Float32Array.from(v) },
});

describe('a host cannot make the enclave swallow a request through a failed close', () => {
  for (const direct of [true, false]) {
    it(`${direct ? 'direct endpoint' : 'enclave pipe'}: the requester never takes the answer to another request as its own`, async () => {
      const { jobId, codec, send, done } = await open(direct);
      try {
        const a = codec.sealRequest(x([1, 2, 3]));
        codec.openResponse(a, await send(a));
        // The requester sends b, then c (pipelined, as the SDK's stream does).
        const bIn = [10, 20, 30];
        const cIn = [-5, 7, 0.5];
        const b = codec.sealRequest(x(bIn));
        const c = codec.sealRequest(x(cIn));
        // The host hands b to the close handler instead of relaying it: "not a close message".
        await expect(
          program.handle('closeSession', { sessionId: jobId, auth: Buffer.from(b).toString('base64') }),
        ).rejects.toMatchObject({ code: 'E_UNAUTHENTICATED' });
        // ... then relays c, and delivers c's answer as the answer to b.
        let answer: Uint8Array | undefined;
        try {
          answer = await send(c);
        } catch {
          answer = undefined; // refusing c is a fine outcome too (the host cannot skip b)
        }
        if (answer !== undefined) {
          let got: number[] | undefined;
          try {
            got = Array.from(codec.openResponse(b, answer).y!.data as Float32Array);
          } catch {
            got = undefined; // the requester detects the substitution: also fine
          }
          // The promise: whatever the requester accepts as b's answer IS b's answer.
          if (got !== undefined) {
            const want = tinyLinearReference(model, bIn, 1);
            for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 3);
          }
        }
      } finally {
        await (program.handle('closeSession', { sessionId: jobId }) as Promise<CloseSessionResult>).catch(
          () => undefined,
        );
        done();
      }
    });
  }

  it('a faked refusal: the answer to one request is never accepted as the answer to the next', async () => {
    const { jobId, codec, send, done } = await open(true);
    try {
      const a = codec.sealRequest(x([1, 2, 3]));
      codec.openResponse(a, await send(a));
      const bIn = [10, 20, 30];
      const cIn = [-5, 7, 0.5];
      const b = codec.sealRequest(x(bIn));
      const c = codec.sealRequest(x(cIn));
      // The host relays b and keeps its answer; the requester is told b was refused (never opens it).
      const answerB = await send(b);
      // The requester's next request c: the host delivers b's answer as c's.
      let got: number[] | undefined;
      try {
        got = Array.from(codec.openResponse(c, answerB).y!.data as Float32Array);
      } catch {
        got = undefined; // detected: fine
      }
      if (got !== undefined) {
        const want = tinyLinearReference(model, cIn, 1);
        for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 3);
      }
    } finally {
      await (program.handle('closeSession', { sessionId: jobId }) as Promise<CloseSessionResult>).catch(
        () => undefined,
      );
      done();
    }
  });
});
