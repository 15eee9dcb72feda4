import { openInferenceSession } from '@firn/client';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { requesterOptions, startTestNetwork, type TestNetwork } from '../e2e/network.ts';

// A stranger's flood of junk session messages against the node API (docs/api.md,
// docs/decisions/0871-node-api-access.md). Its own file, run in the `quiet` project
// (vitest.config.ts, docs/decisions/1680-parallel-test-files.md): the check compares a request's
// latency under the flood with the same request's latency just before, and other test files
// sharing the cores would move the two apart for reasons that are not the node's.
let net: TestNetwork;
let kem: { privateKey: Uint8Array; publicKey: Uint8Array };
const model = tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 5 });

beforeAll(async () => {
  net = await startTestNetwork();
  kem = await generateKemKeyPair();
}, 120_000);
afterAll(() => net?.stop());

describe('node API attacks: session flood', () => {
  it('a stranger flooding a session with junk messages does not hold up the requester behind them', async () => {
    const s = await openInferenceSession({
      ...requesterOptions(net, kem),
      model: { bytes: model.bytes },
      escrow: 10n ** 15n,
    });
    const x = { x: { type: 'float32', dims: [1, 3], data: Float32Array.from([1, 2, 3]) } };
    let t = performance.now();
    await s.infer(x);
    const quiet = performance.now() - t;
    // Not rate limited, not authenticated by the host: 8 MiB of junk per request, 32 at a time.
    const junk = new Uint8Array(8 * 1024 * 1024 - 64).fill(1);
    let flooding = true;
    const url = new URL(`/v1/sessions/${s.sessionId}/requests`, net.node.url);
    const flood = Array.from({ length: 32 }, async () => {
      for (let i = 0; flooding && i < 50; i++)
        await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream' },
          body: junk,
        })
          .then((r) => r.arrayBuffer())
          .catch(() => undefined);
    });
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      t = performance.now();
      await s.infer(x);
      const busy = performance.now() - t;
      expect(busy).toBeLessThan(Math.max(250, 10 * quiet));
    } finally {
      flooding = false;
      await Promise.all(flood);
      await s.close();
    }
  }, 120_000);
});
