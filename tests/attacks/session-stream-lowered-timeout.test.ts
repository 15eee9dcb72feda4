import { SessionStream } from '@firn/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerFrame, type FakeDirectPeer, startFakeDirectPeer } from './fakeDirectPeer.ts';

// Attack (careless SDK user + a node that stalls; SessionStream.requestTimeoutMs): the stream keeps
// one deadline timer for its whole queue and does not clear it when the last answer comes
// ("answers that came in time cost no timer work"); `enqueue` arms a timer only when none is
// pending. A request sent after `requestTimeoutMs` was LOWERED (60 s default, as
// openInferenceSession sets it, then e.g. 300 ms for a latency-bound phase) finds the earlier
// request's timer still armed for its own, much later, moment: the new request's deadline is not
// looked at until then. Against a node that goes silent, the request "may wait at most
// requestTimeoutMs" but waits up to the old timeout (60 s) before it fails, and its stream's
// poll timer, the session and the application wait with it.
//
// Secure outcome: the request fails E_TIMEOUT about `requestTimeoutMs` after it was sent (here
// 300 ms; well within 2.5 s on a loaded machine).

let peer: FakeDirectPeer;
beforeAll(async () => {
  // Answers the first request at once, then never again (a stalled node or model).
  peer = await startFakeDirectPeer((i, sock) => {
    if (i === 0) sock.write(answerFrame());
  });
});
afterAll(() => peer.close());

describe('a lowered requestTimeoutMs bounds the next request', () => {
  it('the request sent after requestTimeoutMs = 300 fails E_TIMEOUT within 2.5 s, not at the old 60 s deadline', async () => {
    const s = await SessionStream.connectDirect('127.0.0.1', peer.port, new Uint8Array(32).fill(4));
    try {
      s.pollMs = 0;
      expect(s.requestTimeoutMs).toBe(60_000);
      await s.send(new Uint8Array(16));
      s.requestTimeoutMs = 300;
      const sent = performance.now();
      const outcome = await Promise.race([
        s.send(new Uint8Array(16)).then(
          () => 'answered',
          (e: unknown) => e,
        ),
        new Promise((r) => setTimeout(() => r('still waiting'), 2_500)),
      ]);
      expect(outcome, `outcome ${Math.round(performance.now() - sent)} ms after the send`).toMatchObject({
        code: 'E_TIMEOUT',
      });
    } finally {
      s.close();
    }
  });
});
