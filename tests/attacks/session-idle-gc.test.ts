import { constants, PerformanceObserver } from 'node:perf_hooks';
import { SessionStream, sessionProofMismatches } from '@firn/client';
import { hexBytes } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { IDLE_GC_MESSAGE_BYTES } from '../../packages/enclave/src/runtime/sessionEndpoint.ts';
import { sessionProgramHarness } from './sessionProgramHarness.ts';

// The session child's collections run between requests, never while one is being answered
// (docs/decisions/1500-session-child-collects-between-requests.md). The enclave program runs in
// this process with models that serve in-process (the same serveSessionEndpoint the image's child
// runs), so the collections the endpoint forces (V8 marks them "forced") show in this process's
// `gc` performance entries, on the same clock as the requests.

const { open, close } = await sessionProgramHarness('idle-gc', 4);

/** A session opened on the child's direct TCP endpoint: its port and token with the session's codec. */
async function openDirect() {
  const { jobId, r, codec } = await open(true);
  const d = r.endpoint!.direct!;
  return { jobId, codec, port: d.port, token: hexBytes(d.token, 'token', 32) };
}

describe('the session endpoint collects between requests', () => {
  it('after IDLE_GC_MESSAGE_BYTES of traffic it forces a collection, and never inside a request; answers are right', async () => {
    const { jobId, codec, port, token } = await openDirect();
    const s = await SessionStream.connectDirect('127.0.0.1', port, token);
    const forced: { start: number; end: number }[] = [];
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const d = (e as unknown as { detail: { flags: number } }).detail;
        if (d.flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED)
          forced.push({ start: e.startTime, end: e.startTime + e.duration });
      }
    });
    obs.observe({ entryTypes: ['gc'] });
    try {
      const rows = 5000; // 60 KB request, 40 KB answer
      const data = Float32Array.from({ length: rows * 3 }, (_, i) => (i % 7) - 3);
      const windows: { start: number; end: number }[] = [];
      let bytes = 0;
      while (bytes < 1.25 * IDLE_GC_MESSAGE_BYTES) {
        const q = codec.sealRequest({ x: { type: 'float32', dims: [rows, 3], data } });
        const start = performance.now();
        const a = await s.send(q);
        windows.push({ start, end: performance.now() });
        bytes += q.length + a.length;
        const y = codec.openResponse(q, a).y!;
        expect(y.dims).toEqual([rows, 2]);
        // The endpoint's idle turn comes after the answer is written: let it run between requests.
        await new Promise((r) => setImmediate(r));
      }
      for (let i = 0; i < 50 && forced.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(forced.length).toBeGreaterThan(0);
      for (const g of forced)
        for (const w of windows)
          expect(g.end <= w.start || g.start >= w.end, 'a forced collection inside a request').toBe(true);
      const closed = await close(jobId, codec);
      expect(closed.requests).toBe(windows.length);
      expect(sessionProofMismatches(closed.proof, codec)).toEqual([]);
    } finally {
      obs.disconnect();
      s.close();
    }
  });
});
