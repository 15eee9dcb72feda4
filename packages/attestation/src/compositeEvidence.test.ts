import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { appraiseEvidence } from './appraiseEvidence.ts';
import { DEV_POLICY, PRODUCTION_POLICY } from './policy/policy.ts';
import { createSimulatedGpuNode } from './testing/simulatedGpuNode.ts';

/**
 * Composite evidence: a simulated CPU TEE whose report data binds the digest of a simulated GPU's
 * SPDM evidence, the GPU having signed the nonce derived from the verifier's nonce. Exercises the
 * same parser and verifier that serve real GPUs; it does not cover real NVIDIA hardware (see the
 * nvidia/ tests for the captured H100 evidence).
 */
const { attest, roots, gpuRoots } = await createSimulatedGpuNode();
const now = () => Math.floor(Date.now() / 1000);

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
