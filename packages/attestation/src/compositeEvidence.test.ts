import { randomBytes } from 'node:crypto';
import { bytesToHex, type EvidenceBundle, hexToBytes } from '@firn/core';
import { createEnclaveProgram, createSimulatedProvider } from '@firn/enclave';
import { describe, expect, it } from 'vitest';
import { appraiseEvidence } from './appraiseEvidence.ts';
import {
  createSimulatedGpu,
  createSimulatedGpuRoot,
  createSimulatedPlatform,
  createSimulatedRoot,
} from '@firn/sim';
import { DEV_POLICY, PRODUCTION_POLICY } from './policy/policy.ts';
import { certificateDer } from './simulated/simulatedPlatform.ts';

/**
 * Composite evidence: a simulated CPU TEE whose report data binds the digest of a simulated GPU's
 * SPDM evidence, the GPU having signed the nonce derived from the verifier's nonce. Exercises the
 * same parser and verifier that serve real GPUs; it does not cover real NVIDIA hardware (see the
 * nvidia/ tests for the captured H100 evidence).
 */
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
  gpu: { collect: async (n) => [await gpu.collect(n)] },
});
await program.handle('init', {});
const roots = { simulated: [certificateDer(root.certificatePem)] };
const gpuRoots = { simulated: [certificateDer(gpuRoot.rootCertPem)] };
const now = () => Math.floor(Date.now() / 1000);

async function attest(nonce: Uint8Array): Promise<EvidenceBundle> {
  return (await program.handle('attest', { nonce: bytesToHex(nonce) })) as EvidenceBundle;
}

describe('composite CPU + GPU evidence', () => {
  it('the dev policy accepts a bound simulated GPU and reports its facts', async () => {
    const nonce = randomBytes(32);
    const a = await appraiseEvidence(await attest(nonce), {
      now: now(),
      policy: DEV_POLICY,
      expectedNonce: nonce,
      roots,
      gpuRoots,
    });
    expect(a.ok).toBe(true);
    if (!a.ok) return;
    expect(a.gpus).toHaveLength(1);
    expect(a.gpus[0]).toMatchObject({
      simulated: true,
      signatureValid: true,
      nonceMatches: true,
      driverVersion: '570.124.06',
    });
  });

  it('a production policy rejects the simulated GPU (and the simulated CPU)', async () => {
    const nonce = randomBytes(32);
    const a = await appraiseEvidence(await attest(nonce), {
      now: now(),
      policy: PRODUCTION_POLICY,
      expectedNonce: nonce,
      roots,
      gpuRoots,
    });
    expect(a.ok).toBe(false);
    if (!a.ok) expect(a.reasons.map((r) => r.message).join(' ')).toMatch(/simulated GPU not allowed/);
  });

  it('refuses GPU evidence that the CPU report data does not bind', async () => {
    const nonce = randomBytes(32);
    const b = await attest(nonce);
    const other = await attest(randomBytes(32));
    const a = await appraiseEvidence(
      { ...b, gpu: other.gpu },
      { now: now(), policy: DEV_POLICY, expectedNonce: nonce, roots, gpuRoots },
    );
    expect(a.ok).toBe(false);
    if (!a.ok) {
      const codes = a.reasons.map((r) => r.code);
      expect(codes).toContain('E_EVIDENCE_BINDING');
      expect(codes).toContain('E_EVIDENCE_NONCE');
    }
  });

  it('refuses a GPU chained to a root that is not pinned', async () => {
    const nonce = randomBytes(32);
    const a = await appraiseEvidence(await attest(nonce), {
      now: now(),
      policy: DEV_POLICY,
      expectedNonce: nonce,
      roots,
    });
    expect(a.ok).toBe(false);
    if (!a.ok) expect(a.reasons.map((r) => r.code)).toContain('E_EVIDENCE_CHAIN');
  });

  it('a policy requiring two GPUs refuses a node with one', async () => {
    const nonce = randomBytes(32);
    const policy = { ...DEV_POLICY, gpu: { ...DEV_POLICY.gpu!, required: 2 } };
    const a = await appraiseEvidence(await attest(nonce), {
      now: now(),
      policy,
      expectedNonce: nonce,
      roots,
      gpuRoots,
    });
    expect(a.ok).toBe(false);
  });

  it('a flipped byte in the GPU report fails its signature', async () => {
    const nonce = randomBytes(32);
    const b = await attest(nonce);
    const g = b.gpu![0]!;
    const ev = Buffer.from(g.evidence, 'base64');
    ev[ev.length - 120]! ^= 1;
    const a = await appraiseEvidence(
      { ...b, gpu: [{ ...g, evidence: ev.toString('base64') }] },
      { now: now(), policy: DEV_POLICY, expectedNonce: nonce, roots, gpuRoots },
    );
    expect(a.ok).toBe(false);
  });
});
