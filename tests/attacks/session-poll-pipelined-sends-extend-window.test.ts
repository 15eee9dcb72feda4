import { SessionStream } from '@firn/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerFrame, type FakeDirectPeer, startFakeDirectPeer } from './fakeDirectPeer.ts';

// Attack (hostile node + an ordinary pipelining requester; decision 1800 and its amendment): the
// requester's poll window is "per answer, from the start of its turn (the send, or the answer
// before it when pipelined); its window ends when the answer comes, and the next answer due gets
// its own", and "a window ends where the next begins (... a new window is never taken for an
// extension of the old one)". But `SessionStream.enqueue` calls `poller.pollFor(pollMs, ...)` for
// EVERY send, pipelined or not, without `stop()`: while the oldest answer is due, each pipelined
// send extends the open window by another pollMs (LoopPoller extends a running window to
// now + ms). A node that answers the first few requests at once (so the stream learns "answers
// come at once" and polls from the send) and then stalls, with a requester that sends as its
// inputs come (openInferenceSession's infer() pipelines; a camera at 30-60 fps sends every
// 16-33 ms, well inside the default 20-50 ms windows), keeps the requester's core spinning for
// as long as it keeps sending and the node keeps silent: up to requestTimeoutMs (60 s by default),
// with no answer ever due to arrive. The pipelined requests' turns never start (the answer before
// them never came), so none of them is due yet.
//
// Secure outcome: once the oldest answer's window (pollMs) is over, the stream sleeps until that
// answer comes (or its deadline), however many requests are sent behind it.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let peer: FakeDirectPeer;
beforeAll(async () => {
  // Answers the first three requests at once, then goes silent (keeps the connection open and
  // never answers again).
  peer = await startFakeDirectPeer((i, sock) => {
    if (i < 3) sock.write(answerFrame());
  });
});
afterAll(() => peer.close());

describe('a stalled answer with requests pipelined behind it', () => {
  it('the requester stops polling once the oldest answer’s window is over, however many requests follow it', async () => {
    const port = peer.port;
    const s = await SessionStream.connectDirect('127.0.0.1', port, new Uint8Array(32).fill(5));
    const sending = { on: true };
    try {
      s.pollMs = 50;
      // Three answers that come at once: the stream now polls from the send.
      for (let i = 0; i < 3; i++) await s.send(new Uint8Array(16));
      // The fourth is never answered; the application keeps sending (pipelined) every 25 ms.
      s.send(new Uint8Array(16)).catch(() => undefined);
      const sender = (async () => {
        while (sending.on && !s.closed) {
          await sleep(25);
          s.send(new Uint8Array(16)).catch(() => undefined);
        }
      })();
      // Well past the oldest answer's 50 ms window.
      await sleep(300);
      const a = s.pollTurns;
      await sleep(300);
      const b = s.pollTurns;
      sending.on = false;
      await sender;
      expect(s.closed, 'the stream is still open (no deadline passed)').toBe(false);
      expect(
        b - a,
        'turns polled 300-600 ms after the stalled request was sent (its window is 50 ms; no other answer is due before it)',
      ).toBeLessThanOrEqual(1);
    } finally {
      sending.on = false;
      s.close();
    }
  });
});
