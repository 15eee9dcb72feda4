import { randomBytes } from 'node:crypto';
import { bytesToHex, type EvidenceBundle, hexToBytes } from '@firn/core';
import { createEnclaveProgram, createSimulatedProvider } from '@firn/enclave';
import { describe, expect, it } from 'vitest';
import { appraiseEvidence } from '../../packages/attestation/src/appraiseEvidence.ts';
import {
  createSimulatedGpu,
  createSimulatedGpuRoot,
  createSimulatedPlatform,
  createSimulatedRoot,
} from '@firn/sim';
import { DEV_POLICY } from '../../packages/attestation/src/policy/policy.ts';
import { certificateDer } from '../../packages/attestation/src/simulated/simulatedPlatform.ts';

// A host that owns one GPU and wants its node counted as a multi-GPU node: GPU traffic crosses the
// host (the collector output is untrusted, docs/attestation-nvidia.md), so it hands the TD the same
// signed SPDM answer once per "GPU". Every copy signs the right nonce under a valid chain.
const root = await createSimulatedRoot();
const platform = await createSimulatedPlatform(root);
const gpuRoot = await createSimulatedGpuRoot();
const gpu = await createSimulatedGpu({
  root: gpuRoot,
  driverVersion: '570.124.06',
  vbiosVersion: '96.00.9F.00.04',
});
const sha = new Uint8Array(randomBytes(32));
const program = createEnclaveProgram({
  provider: createSimulatedProvider(platform, sha),
  measurementRegisters: [sha],
  platformId: hexToBytes(platform.platformId),
  gpu: {
    collect: async (n) => {
      const one = await gpu.collect(n);
      return [one, { ...one }];
    },
  },
});
await program.handle('init', {});
const roots = { simulated: [certificateDer(root.certificatePem)] };
const gpuRoots = { simulated: [certificateDer(gpuRoot.rootCertPem)] };

describe('attack: one GPU presented twice to meet a policy that requires two', () => {
  it('the same device counted twice does not make two GPUs', async () => {
    const nonce = randomBytes(32);
    const bundle = (await program.handle('attest', { nonce: bytesToHex(nonce) })) as EvidenceBundle;
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
