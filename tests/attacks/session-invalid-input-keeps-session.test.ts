import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { openNetworkSession } from '../helpers/networkSession.ts';

// "Invalid tensors reject at once (E_INPUT_INVALID, E_UNSUPPORTED) and leave the session open."
// The requester's encoder let through tensor maps the enclave's decoder refuses (an empty map, a
// bool element other than 0 or 1, a rank over the cap): they were sealed, sent and consumed a
// sequence number, the enclave answered E_INPUT_INVALID, and that answer closed the whole session,
// so the caller's next valid request failed E_CONFLICT and the proof covered a refused request.
let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

const model = tinyLinearModel({ inFeatures: 4, outFeatures: 3, seed: 5 });
const good = () => ({
  x: { type: 'float32' as const, dims: [1, 4], data: Float32Array.from([1, 2, 3, 4]) },
});

describe('a locally invalid tensor map rejects at infer() and leaves the session open', () => {
  for (const transport of ['direct', 'http'] as const)
    it(`${transport}: empty map, bool 2, rank 9 reject E_INPUT_INVALID; the next request is answered`, async () => {
      const session = await openNetworkSession(net, model.bytes, {
        transport,
      });
      expect(session.transport).toBe(transport);
      const invalid = [
        {},
        { x: { type: 'bool' as const, dims: [4], data: Uint8Array.from([0, 1, 2, 1]) } },
        { x: { type: 'float32' as const, dims: [1, 1, 1, 1, 1, 1, 1, 1, 1], data: new Float32Array(1) } },
      ];
      for (const bad of invalid) {
        const r = await session.infer(bad).then(
          () => 'answered',
          (e: { code?: string }) => e.code,
        );
        expect(r).toBe('E_INPUT_INVALID');
      }
      const out = await session.infer(good());
      expect(out.y?.dims).toEqual([1, 3]);
      const closed = await session.close();
      expect(closed.proofCheck).toEqual({ ok: true, reasons: [] });
      expect(closed.requests).toBe(1);
    }, 90_000);
});
