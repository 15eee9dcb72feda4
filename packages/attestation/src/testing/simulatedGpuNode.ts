import { randomBytes } from 'node:crypto';
import { bytesToHex, type EvidenceBundle, hexToBytes } from '@firn/core';
import { createEnclaveProgram, createSimulatedProvider } from '@firn/enclave';
import {
  createSimulatedGpu,
  createSimulatedGpuRoot,
  createSimulatedPlatform,
  createSimulatedRoot,
} from '@firn/sim';
import { certificateDer } from '../simulated/simulatedPlatform.ts';

// Test-only (tsconfig.build.json excludes src/**/testing/**): an initialised enclave program on a
// simulated CPU TEE with one simulated GPU (driver 570.124.06, VBIOS 96.00.9F.00.04), the composite
// evidence the appraisal tests and GPU attacks start from. It does not cover real NVIDIA hardware
// (see the nvidia/ tests for captured evidence).

/** A simulated CPU + GPU node and the pinned roots a verifier of its evidence needs. */
export interface SimulatedGpuNode {
  /** Composite evidence for `nonce` (32 bytes): the CPU report binds the GPU evidence's digest. */
  attest(nonce: Uint8Array): Promise<EvidenceBundle>;
  /** The simulated CPU root, DER, as `appraiseEvidence`'s `roots`. */
  roots: { simulated: Uint8Array[] };
  /** The simulated GPU root, DER, as `appraiseEvidence`'s `gpuRoots`. */
  gpuRoots: { simulated: Uint8Array[] };
}

/**
 * Create and initialise the node. `gpuCopies` (default 1) is how many entries the GPU collector
 * returns: above 1, the one GPU's signed answer is repeated, as a host would to pass one GPU off as
 * several.
 */
export async function createSimulatedGpuNode(opts: { gpuCopies?: number } = {}): Promise<SimulatedGpuNode> {
  const copies = opts.gpuCopies ?? 1;
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
        return Array.from({ length: copies }, (_v, i) => (i === 0 ? one : { ...one }));
      },
    },
  });
  await program.handle('init', {});
  return {
    attest: async (nonce) => (await program.handle('attest', { nonce: bytesToHex(nonce) })) as EvidenceBundle,
    roots: { simulated: [certificateDer(root.certificatePem)] },
    gpuRoots: { simulated: [certificateDer(gpuRoot.rootCertPem)] },
  };
}
