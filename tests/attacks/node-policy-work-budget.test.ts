import { generateKemKeyPair } from '@firn/crypto';
import { runJob } from '@firn/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { inferenceJobOptions, startTestNetwork, type TestNetwork } from '../e2e/network.ts';

// The operator's `minEscrowWei` is the least it works for (docs/api.md, "Job policy"). With a
// work budget (maxWorkUnits, decision 0830) the node is paid escrow * workUnits / maxWorkUnits,
// and the policy looks at the escrow only: a requester posts an escrow far above the minimum with
// maxWorkUnits = 2^64 - 1, the node claims, runs the job and proves it, and is paid 0 wei at
// finalize; the whole escrow goes back to the requester. Work for free, and the operator pays the
// claim and proof gas. Promise: a requester cannot get work for free; the node takes only jobs
// that pay at least its minimum.
let net: TestNetwork;
let kem: { privateKey: Uint8Array; publicKey: Uint8Array };
const model = tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 11 });

beforeAll(async () => {
  net = await startTestNetwork();
  kem = await generateKemKeyPair();
}, 120_000);
afterAll(() => net?.stop());

describe('work budget against the operator policy', () => {
  it('a job whose budget pays under the minimum escrow is refused, or pays at least the minimum', async () => {
    const policy = net.node.jobs!.policy;
    const saved = policy.minEscrowWei;
    const min = 10n ** 12n;
    policy.minEscrowWei = min;
    const escrow = 10n ** 15n; // 1000 x the operator's minimum
    const maxWorkUnits = (1n << 64n) - 1n;
    try {
      const out = await runJob(inferenceJobOptions(net, kem, model.bytes, { escrow, maxWorkUnits })).then(
        (r) => ({ r }),
        (e: unknown) => ({ e: e as { code?: string } }),
      );
      if ('e' in out) {
        expect(out.e.code).toBe('E_POLICY_REJECTED');
        return;
      }
      const units = BigInt(out.r.proof.proof.workUnits);
      const earned = (escrow * (units < maxWorkUnits ? units : maxWorkUnits)) / maxWorkUnits;
      // The node ran the job: what finalize will pay it is at least its minimum.
      expect(earned, `node paid ${earned} wei for ${units} work units`).toBeGreaterThanOrEqual(min);
    } finally {
      policy.minEscrowWei = saved;
    }
  }, 90_000);
});
