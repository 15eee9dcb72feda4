import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { openNetworkSession } from '../helpers/networkSession.ts';

// The POST fallback encodes a request at infer() but seals it only at its turn, and sealing is
// where the session's 8 MiB message cap was checked: a request over the cap rejected inside the
// turn, where every failure closes the session. The stream path checks the cap at infer() (no
// sequence number taken) and keeps the session; over POST the caller's next request failed
// E_CONFLICT. A request refused before anything is sent must leave the session open on every transport.
let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

const model = tinyLinearModel({ inFeatures: 4, outFeatures: 3, seed: 5 });
const rows = (n: number) => ({
  x: { type: 'float32' as const, dims: [n, 4], data: Float32Array.from({ length: n * 4 }, (_v, i) => i % 7) },
});

describe('a request over the session cap rejects at infer() and leaves the session open', () => {
  for (const transport of ['direct', 'http'] as const)
    it(`${transport}: a 9 MiB request rejects, the next one is answered and proved`, async () => {
      const session = await openNetworkSession(net, model.bytes, {
        transport,
      });
      expect(session.transport).toBe(transport);
      const big = session.infer(rows((9 * 1024 * 1024) / 16));
      const r = await big.then(
        () => 'answered',
        (e: { code?: string }) => e.code,
      );
      expect(r).not.toBe('answered');
      const out = await session.infer(rows(2));
      expect(out.y?.dims).toEqual([2, 3]);
      const closed = await session.close();
      expect(closed.proofCheck).toEqual({ ok: true, reasons: [] });
      expect(closed.requests).toBe(1);
    }, 90_000);
});
