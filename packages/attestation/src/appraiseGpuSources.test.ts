import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appraiseEvidence } from './appraiseEvidence.ts';
import { createRimServiceClient } from './nvidia/rimService.ts';
import { DEV_POLICY } from './policy/policy.ts';
import { createSimulatedGpuNode } from './testing/simulatedGpuNode.ts';

// appraiseEvidence asks the RIM source for the RIMs the GPU evidence names (driver and VBIOS
// versions from the signed SPDM report). Simulated GPU, simulated CPU TEE; the RIM service here
// publishes nothing, so a policy that requires a RIM match refuses. Real RIMs are covered in
// nvidia/rimService.test.ts.
const { attest, roots, gpuRoots } = await createSimulatedGpuNode();
const now = Math.floor(Date.now() / 1000);

const asked: string[] = [];
let server: Server;
let base = '';
beforeAll(async () => {
  server = createServer((req, res) => {
    asked.push(req.url ?? '');
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('appraiseEvidence with a GPU RIM source', () => {
  it('asks for the RIMs the signed report names; a policy requiring a RIM match refuses when none is published', async () => {
    const nonce = randomBytes(32);
    const bundle = await attest(nonce);
    const gpuRimSource = createRimServiceClient({ baseUrl: base, retries: 0 });
    const lax = await appraiseEvidence(bundle, {
      now,
      policy: DEV_POLICY,
      expectedNonce: nonce,
      roots,
      gpuRoots,
      gpuRimSource,
    });
    expect(lax.ok).toBe(true);
    expect(asked.some((u) => u.startsWith('/v1/rim/NV_GPU_DRIVER_') && u.endsWith('_570.124.06'))).toBe(true);
    const strict = await appraiseEvidence(bundle, {
      now,
      policy: { ...DEV_POLICY, gpu: { ...DEV_POLICY.gpu!, requireMeasurementsMatch: true } },
      expectedNonce: nonce,
      roots,
      gpuRoots,
      gpuRimSource,
    });
    expect(!strict.ok && strict.reasons).toEqual([
      expect.objectContaining({ code: 'E_EVIDENCE_TCB', message: expect.stringContaining('RIM') }),
    ]);
  });

  it('simulated evidence (the devnet) never asks the DCAP collateral source', async () => {
    const nonce = randomBytes(32);
    const bundle = await attest(nonce);
    let calls = 0;
    const collateralSource = {
      description: 'must not be asked',
      collateralFor: async () => {
        calls++;
        throw new Error('asked');
      },
    };
    const a = await appraiseEvidence(bundle, {
      now,
      policy: DEV_POLICY,
      expectedNonce: nonce,
      roots,
      gpuRoots,
      collateralSource,
    });
    expect(a.ok).toBe(true);
    expect(calls).toBe(0);
  });
});
