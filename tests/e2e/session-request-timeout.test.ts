import type { InferenceSession } from '@firn/client';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loopForeverModel } from '../helpers/loopForeverModel.ts';
import { openNetworkSession } from '../helpers/networkSession.ts';
import { startTestNetwork, type TestNetwork } from './network.ts';

// A session whose every request is taken and never answered (its model spins for ever: the
// requester cannot tell it from a child or host that went silent). Each `infer` must end with
// E_TIMEOUT after openInferenceSession's requestTimeoutMs, on the direct connection and on the
// POST fallback, and so must a request queued behind it; the session is then closed
// (docs/decisions/1530-session-request-deadline-and-post-resends.md).
let net: TestNetwork;
const x = { x: { type: 'float32' as const, dims: [1, 3], data: Float32Array.of(1, 2, 3) } };

beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

async function openSpinning(transport: 'direct' | 'http'): Promise<InferenceSession> {
  return openNetworkSession(net, loopForeverModel(), {
    requesterKem: await generateKemKeyPair(),
    escrow: 10n ** 15n,
    transport,
    requestTimeoutMs: 1_500,
  });
}

describe('a session request that is never answered', () => {
  for (const transport of ['direct', 'http'] as const)
    it(`${transport}: the request and the one queued behind it fail with E_TIMEOUT; the session closes`, async () => {
      const session = await openSpinning(transport);
      expect(session.transport).toBe(transport);
      const t0 = performance.now();
      const [a, b] = await Promise.all([
        session.infer(x).catch((e: unknown) => e),
        session.infer(x).catch((e: unknown) => e),
      ]);
      const took = performance.now() - t0;
      for (const e of [a, b]) {
        expect(e).toMatchObject({ code: 'E_TIMEOUT' });
        expect((e as Error).message).toMatch(/requestTimeoutMs/);
      }
      expect(took).toBeGreaterThanOrEqual(1_400);
      expect(took).toBeLessThan(15_000);
      // Closed after the failure: a later request is refused (once the close it started is done),
      // and close() settles with a
      // typed error (nothing was answered, so there is no proof; with the model still spinning the
      // node's own close call to the enclave may time out too).
      await expect(session.infer(x)).rejects.toBeTruthy();
      await expect(session.close()).rejects.toMatchObject({ code: expect.stringMatching(/^E_/) });
    }, 60_000);
});
