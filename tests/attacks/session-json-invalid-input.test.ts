import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { openNetworkSession } from '../helpers/networkSession.ts';

// "Invalid tensors reject at once (E_INPUT_INVALID, E_UNSUPPORTED) and leave the session open."
// With `format: 'json'` the requester writes tensor JSON without the checks the enclave's parser
// makes (dims against the data's length, at least one tensor): such a request was sealed and sent,
// the enclave answered E_INPUT_INVALID, and that answer closed the whole session.
let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

const model = tinyLinearModel({ inFeatures: 4, outFeatures: 3, seed: 5 });
const good = () => ({
  x: { type: 'float32' as const, dims: [1, 4], data: Float32Array.from([1, 2, 3, 4]) },
});

describe('a locally invalid tensor map in JSON format rejects at infer() and leaves the session open', () => {
  for (const transport of ['direct', 'http'] as const)
    it(`${transport}: json: empty map, dims that do not match the data reject E_INPUT_INVALID; the next request is answered`, async () => {
      const session = await openNetworkSession(net, model.bytes, {
        transport,
        format: 'json',
      });
      expect(session.transport).toBe(transport);
      const invalid = [{}, { x: { type: 'float32' as const, dims: [1, 4], data: new Float32Array(3) } }];
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
