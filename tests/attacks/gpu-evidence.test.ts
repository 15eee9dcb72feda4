import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { appraiseEvidence } from '../../packages/attestation/src/appraiseEvidence.ts';
import { DEV_POLICY } from '../../packages/attestation/src/policy/policy.ts';
import { createSimulatedGpuNode } from '../../packages/attestation/src/testing/simulatedGpuNode.ts';

// A host that owns one GPU and wants its node counted as a multi-GPU node: GPU traffic crosses the
// host (the collector output is untrusted, docs/attestation-nvidia.md), so it hands the TD the same
// signed SPDM answer once per "GPU". Every copy signs the right nonce under a valid chain.
// The collector returns the one GPU's signed answer twice.
const { attest, roots, gpuRoots } = await createSimulatedGpuNode({ gpuCopies: 2 });

describe('attack: one GPU presented twice to meet a policy that requires two', () => {
  it('the same device counted twice does not make two GPUs', async () => {
    const nonce = randomBytes(32);
    const bundle = await attest(nonce);
    const a = await appraiseEvidence(bundle, {
      now: Math.floor(Date.now() / 1000),
      policy: { ...DEV_POLICY, gpu: { ...DEV_POLICY.gpu!, required: 2 } },
      expectedNonce: nonce,
      roots,
      gpuRoots,
    });
    if (a.gpus) expect(a.gpus.map((g) => g.deviceId)).toEqual([a.gpus[0]!.deviceId, a.gpus[0]!.deviceId]);
    expect(a.ok).toBe(false);
  });
});
