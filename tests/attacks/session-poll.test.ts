import { openInferenceSession, SessionStream, sessionProofMismatches } from '@firn/client';
import { type Hex, hexBytes } from '@firn/core';
import { POLL_LEAD_MS } from '@firn/core';
import { describe, expect, it } from 'vitest';
import {
  MAX_SESSION_POLL_MS,
  type ServedSessionEndpoint,
} from '../../packages/enclave/src/runtime/sessionEndpoint.ts';
import { answerFrame, startFakeDirectPeer } from './fakeDirectPeer.ts';
import { sessionProgramHarness } from './sessionProgramHarness.ts';

// Both ends of a session keep their event loop polling for a bounded window while the other's next
// message is due (docs/decisions/1800-session-ends-poll-while-an-answer-is-due.md): the child after
// each answer (the host's SessionBounds.pollMs, passed at the open and checked by the enclave), the
// requester after each request (openInferenceSession's pollMs). The window is bounded: a quiet
// session stops costing CPU once it ends. Real sockets, framing and crypto; no timing of requests.

const served = new Map<Hex, ServedSessionEndpoint>();
const { open, x, close, program } = await sessionProgramHarness('poll', 9, {
  onServed: (id, s) => served.set(id, s),
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function openDirect(pollMs?: number) {
  const o = await open(true, '127.0.0.1', pollMs === undefined ? {} : { pollMs });
  const d = o.r.endpoint!.direct!;
  const s = await SessionStream.connectDirect('127.0.0.1', d.port, hexBytes(d.token, 'token', 32));
  return { ...o, s, served: served.get(o.jobId)! };
}

/** Wait until `count()` stops growing for 60 ms (at most 5 s); returns the final count. */
async function settled(count: () => number): Promise<number> {
  let last = -1;
  for (let i = 0; i < 100 && count() !== last; i++) {
    last = count();
    await sleep(60);
  }
  return count();
}

describe('session ends poll for a bounded window while a message is due', () => {
  it('the child polls after each answer for the window the open named, then sleeps; answers and proof are right', async () => {
    const { jobId, codec, s, served: ep } = await openDirect(80);
    try {
      const before = await settled(() => ep.pollTurns());
      const q = codec.sealRequest(x([1, 2, 3]));
      const y = codec.openResponse(q, await s.send(q)).y!;
      expect(y.dims).toEqual([1, 2]);
      const after = await settled(() => ep.pollTurns());
      // It polled after the answer, and the window ended by itself (the count stopped growing).
      expect(after).toBeGreaterThan(before);
      await sleep(150);
      expect(ep.pollTurns()).toBe(after);
      const closed = await close(jobId, codec);
      expect(closed.requests).toBe(1);
      expect(sessionProofMismatches(closed.proof, codec)).toEqual([]);
    } finally {
      s.close();
    }
  });

  it('pollMs 0: the child never polls', async () => {
    const { jobId, codec, s, served: ep } = await openDirect(0);
    try {
      for (let i = 0; i < 3; i++) {
        const q = codec.sealRequest(x([i, 1, 2]));
        codec.openResponse(q, await s.send(q));
      }
      await sleep(50);
      expect(ep.pollTurns()).toBe(0);
      await close(jobId, codec);
    } finally {
      s.close();
    }
  });

  it('a requester whose requests come later than the window: after three such gaps the child no longer polls', async () => {
    const { jobId, codec, s, served: ep } = await openDirect(30);
    try {
      for (let i = 0; i < 4; i++) {
        const q = codec.sealRequest(x([i, 2, 3]));
        codec.openResponse(q, await s.send(q));
        // Three times the window between an answer and the next request.
        await sleep(90);
      }
      await settled(() => ep.pollTurns());
      const q = codec.sealRequest(x([9, 9, 9]));
      codec.openResponse(q, await s.send(q));
      // (It may poll while the request runs, for the run's end; not after the answer.)
      const answered = ep.pollTurns();
      await sleep(100);
      expect(ep.pollTurns()).toBe(answered);
      await close(jobId, codec);
    } finally {
      s.close();
    }
  });

  it('a requester that waits a while between requests: the child sleeps until shortly before the next is due, then polls', async () => {
    // The window (300 ms) covers the gaps (150 ms), so the child polls after each answer; once three
    // gaps are known it starts POLL_LEAD_MS before the shortest one instead of at the answer, and
    // leaves the core to the machine's other processes until then.
    const { jobId, codec, s, served: ep } = await openDirect(300);
    try {
      for (let i = 0; i < 4; i++) {
        const q = codec.sealRequest(x([i, 2, 3]));
        codec.openResponse(q, await s.send(q));
        await sleep(150);
      }
      const q = codec.sealRequest(x([7, 7, 7]));
      codec.openResponse(q, await s.send(q));
      const answered = ep.pollTurns();
      await sleep(80);
      expect(ep.pollTurns(), 'turns polled in the 80 ms after the answer').toBe(answered);
      await sleep(150);
      // The delayed window opened about 150 - POLL_LEAD_MS ms after the answer, and polls.
      expect(ep.pollTurns()).toBeGreaterThan(answered);
      expect(POLL_LEAD_MS).toBeLessThan(50);
      await close(jobId, codec);
    } finally {
      s.close();
    }
  });

  it('an open naming a poll window over the cap, negative, fractional or not a number is refused E_INVALID_INPUT and takes no slot', async () => {
    for (const pollMs of [MAX_SESSION_POLL_MS + 1, -1, 2.5, '20', Number.NaN, 1e12]) {
      await expect(open(true, '127.0.0.1', { pollMs })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
    }
    // Every slot is still free: as many sessions as before open.
    const opened = await Promise.all([openDirect(), openDirect(), openDirect(), openDirect()]);
    for (const o of opened) {
      const q = o.codec.sealRequest(x([1, 1, 1]));
      o.codec.openResponse(q, await o.s.send(q));
      await close(o.jobId, o.codec);
      o.s.close();
    }
    expect(program).toBeDefined();
  });

  it('the requester polls while its answer is due, at most pollMs, and not at all with pollMs 0', async () => {
    const { jobId, codec, s } = await openDirect(0);
    try {
      expect(s.pollMs).toBe(20);
      s.pollMs = 0;
      let q = codec.sealRequest(x([1, 2, 3]));
      codec.openResponse(q, await s.send(q));
      expect(s.pollTurns).toBe(0);
      s.pollMs = 1_000;
      q = codec.sealRequest(x([4, 5, 6]));
      const answered = s.send(q);
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      codec.openResponse(q, await answered);
      // It polled while the answer was due and stopped once it came (long before the 1 s window).
      const turns = s.pollTurns;
      expect(turns).toBeGreaterThan(0);
      await sleep(100);
      expect(s.pollTurns).toBeLessThanOrEqual(turns + 1);
      await close(jobId, codec);
    } finally {
      s.close();
    }
  });

  it('openInferenceSession refuses a pollMs out of range before doing anything', async () => {
    for (const pollMs of [-1, 1_001, 0.5, Number.NaN]) {
      await expect(
        openInferenceSession({
          pollMs,
          model: { bytes: new Uint8Array(1) },
        } as unknown as Parameters<typeof openInferenceSession>[0]),
      ).rejects.toMatchObject({ code: 'E_INVALID_INPUT', message: expect.stringMatching(/pollMs/) });
    }
  });
});

describe('the requester polls from shortly before an answer is due', () => {
  it('answers that take 150 ms: after three, the stream sleeps through most of the wait and polls near its end', async () => {
    // A peer that accepts the direct connection and answers the first three requests after 150 ms
    // (a long inference), the fourth after 400 ms (a slower one: its answer cannot come in the same
    // turn of the loop as the poll window's start, however late a loaded machine fires timers).
    const peer = await startFakeDirectPeer((i, sock) => {
      setTimeout(() => sock.write(answerFrame()), i < 3 ? 150 : 400);
    });
    const port = peer.port;
    const s = await SessionStream.connectDirect('127.0.0.1', port, new Uint8Array(32).fill(3));
    try {
      s.pollMs = 300;
      // The first answers are polled for from the send (nothing is known of their time yet).
      await s.send(new Uint8Array(16));
      expect(s.pollTurns).toBeGreaterThan(0);
      await s.send(new Uint8Array(16));
      await s.send(new Uint8Array(16));
      const before = s.pollTurns;
      const answered = s.send(new Uint8Array(16));
      await sleep(80);
      expect(s.pollTurns, 'turns polled in the first 80 ms of a wait of at least 150 ms').toBe(before);
      await answered;
      // It polled from about 150 - POLL_LEAD_MS ms on, and stopped once the answer came.
      expect(s.pollTurns).toBeGreaterThan(before);
      const after = s.pollTurns;
      await sleep(50);
      expect(s.pollTurns).toBeLessThanOrEqual(after + 1);
    } finally {
      s.close();
      peer.close();
    }
  });
});
