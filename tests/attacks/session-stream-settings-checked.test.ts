import { MAX_SESSION_POLL_MS, SessionStream } from '@firn/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeDirectPeer, startFakeDirectPeer } from './fakeDirectPeer.ts';

// Attack (careless SDK user, decision 1800): `SessionStream` is exported by @firn/client and its
// `pollMs` is a public field. MAX_SESSION_POLL_MS is documented as "The longest poll window a
// stream takes, ms (a larger `pollMs` is E_INVALID_INPUT)", but only openInferenceSession checks
// the option: the stream itself takes any number. A user who drives a stream directly and writes
// `stream.pollMs = 5_000` (thinking "poll up to 5 s for slow answers") gets a process that spins
// one core for 5 s per request whenever the peer is slow or silent: far past the documented
// longest window. Secure outcome: the stream refuses the value (E_INVALID_INPUT naming pollMs) or
// never polls longer than MAX_SESSION_POLL_MS.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let peer: FakeDirectPeer;
beforeAll(async () => {
  // A peer that accepts the direct connection and then never answers a request: a slow model, a
  // busy node, or a host that drops the requester's frames.
  peer = await startFakeDirectPeer();
});
afterAll(() => peer.close());

describe('SessionStream.pollMs is bounded by MAX_SESSION_POLL_MS', () => {
  it('a stream never polls longer than MAX_SESSION_POLL_MS after a request, whatever pollMs it was given', async () => {
    const port = peer.port;
    const s = await SessionStream.connectDirect('127.0.0.1', port, new Uint8Array(32).fill(7));
    try {
      try {
        s.pollMs = 5 * MAX_SESSION_POLL_MS;
      } catch (e) {
        // Refusing the value outright is a secure outcome too.
        expect(e).toMatchObject({ code: 'E_INVALID_INPUT', message: expect.stringMatching(/pollMs/) });
        return;
      }
      const answered = s.send(new Uint8Array(64));
      answered.catch(() => undefined);
      // Past the longest window the stream should ever take (plus slack for a loaded machine).
      await sleep(MAX_SESSION_POLL_MS + 400);
      const turns = s.pollTurns;
      await sleep(300);
      // The loop is still being spun for a request whose answer has not come: polling did not
      // end at MAX_SESSION_POLL_MS.
      expect(s.pollTurns - turns, 'turns polled 1.4-1.7 s after the request (past MAX_SESSION_POLL_MS)').toBe(
        0,
      );
    } finally {
      s.close();
    }
  });
});

// Attack (careless SDK user): `SessionStream.requestTimeoutMs` is a public field that
// openInferenceSession checks (1 to 2^31 - 1) but the stream itself does not. A user driving a
// stream directly who writes `stream.requestTimeoutMs = Infinity` ("never time out"), or any value
// over 2^31 - 1 ms, gets a deadline timer Node clamps to 1 ms: each time it fires the oldest
// request's deadline is still ahead, so it re-arms for the same over-long delay, and fires again
// 1 ms later, for as long as an answer is due (with a silent peer: for ever). The process is woken
// about a thousand times a second, the opposite of what the stream's single unref'd deadline timer
// promises. Secure outcome: the value is refused (E_INVALID_INPUT naming requestTimeoutMs), or
// the deadline timer is armed a bounded number of times while the request waits.
describe('SessionStream.requestTimeoutMs over the timer range is refused, never a 1 ms timer loop', () => {
  for (const timeout of [Number.POSITIVE_INFINITY, 2 ** 31 * 4]) {
    it(`requestTimeoutMs = ${timeout}: the deadline timer is not re-armed every millisecond`, async () => {
      const port = peer.port;
      const s = await SessionStream.connectDirect('127.0.0.1', port, new Uint8Array(32).fill(9));
      const realSetTimeout = globalThis.setTimeout;
      let armed = 0;
      try {
        try {
          s.requestTimeoutMs = timeout;
        } catch (e) {
          expect(e).toMatchObject({
            code: 'E_INVALID_INPUT',
            message: expect.stringMatching(/requestTimeoutMs/),
          });
          return;
        }
        s.pollMs = 0;
        // Count the timers armed with the over-long delay (the stream's deadline re-arms).
        globalThis.setTimeout = ((fn: () => void, ms?: number, ...rest: unknown[]) => {
          if (typeof ms === 'number' && ms > 2 ** 31 - 1) armed++;
          return (realSetTimeout as (...a: unknown[]) => ReturnType<typeof setTimeout>)(fn, ms, ...rest);
        }) as typeof setTimeout;
        const answered = s.send(new Uint8Array(64));
        answered.catch(() => undefined);
        await sleep(300);
        globalThis.setTimeout = realSetTimeout;
        expect(s.closed, 'the stream is still waiting (no E_TIMEOUT)').toBe(false);
        expect(armed, 'deadline timers armed in 300 ms while one request waits').toBeLessThanOrEqual(2);
      } finally {
        globalThis.setTimeout = realSetTimeout;
        s.close();
      }
    });
  }
});
