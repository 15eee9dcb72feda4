import { loadOnnxModel } from '@firn/ml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { openNetworkSession } from '../helpers/networkSession.ts';

// A session takes a request's inputs when `infer()` is called, on every transport. The POST
// fallback used to seal a request only at its turn (after the requests before it), so a caller
// that reused its arrays right after infer() (a common pattern: one input buffer per loop) had the
// enclave run, and the proof count, inputs it never asked about, while the stream path sent the
// original ones: two transports, two answers to the same calls.
let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

const model = tinyLinearModel({ inFeatures: 4, outFeatures: 3, seed: 5 });
const input = (k: number) => ({
  x: {
    type: 'float32' as const,
    dims: [2, 4],
    data: Float32Array.from({ length: 8 }, (_v, i) => Math.cos(i * 0.9 + k)),
  },
});

describe('session inputs are taken at infer()', () => {
  for (const transport of ['http', 'stream'] as const)
    it(`${transport}: arrays changed after infer() do not change the request or its answer`, async () => {
      const plain = await loadOnnxModel(model.bytes);
      const session = await openNetworkSession(net, model.bytes, {
        transport,
      });
      expect(session.transport).toBe(transport);
      const a = input(1);
      const b = input(2);
      const c = input(3);
      const answers = [session.infer(a), session.infer(b), session.infer(c)];
      // The caller reuses its buffers at once: overwrites them, swaps a tensor out of the map,
      // and changes a shape.
      a.x.data.fill(0);
      b.x = { type: 'float32', dims: [1, 4], data: new Float32Array(4).fill(-7) };
      c.x.dims[0] = 1;
      const outs = await Promise.all(answers);
      for (const [i, k] of [1, 2, 3].entries()) {
        const ref = await plain.run(input(k));
        const got = outs[i]!.y!;
        expect(got.dims).toEqual([2, 3]);
        const want = ref.y!.data as Float32Array;
        const have = got.data as Float32Array;
        expect(have.length).toBe(want.length);
        for (let j = 0; j < want.length; j++) expect(Math.abs(have[j]! - want[j]!)).toBeLessThanOrEqual(1e-5);
      }
      const closed = await session.close();
      expect(closed.proofCheck).toEqual({ ok: true, reasons: [] });
      expect(closed.requests).toBe(3);
      expect(closed.workUnits).toBe(24n);
    }, 60_000);
});
