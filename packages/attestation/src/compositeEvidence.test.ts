import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { appraiseEvidence } from './appraiseEvidence.ts';
import { type AttestationPolicy, DEV_POLICY, PRODUCTION_POLICY } from './policy/policy.ts';
import { createSimulatedGpuNode } from './testing/simulatedGpuNode.ts';

/**
 * Composite evidence: a simulated CPU TEE whose report data binds the digest of a simulated GPU's
 * SPDM evidence, the GPU having signed the nonce derived from the verifier's nonce. Exercises the
 * same parser and verifier that serve real GPUs; it does not cover real NVIDIA hardware (see the
 * nvidia/ tests for the captured H100 evidence).
 */
const { attest, roots, gpuRoots } = await createSimulatedGpuNode();
const now = () => Math.floor(Date.now() / 1000);

/** Appraise `bundle` for `nonce` now, pinning the simulated CPU root and (unless `pinGpuRoot` is false) the GPU root. */
const appraise = (
  bundle: Parameters<typeof appraiseEvidence>[0],
  nonce: Uint8Array,
  policy: AttestationPolicy = DEV_POLICY,
  pinGpuRoot = true,
) =>
  appraiseEvidence(bundle, {
    now: now(),
    policy,
    expectedNonce: nonce,
    roots,
    ...(pinGpuRoot ? { gpuRoots } : {}),
  });

describe('composite CPU + GPU evidence', () => {
  it('the dev policy accepts a bound simulated GPU and reports its facts', async () => {
    const nonce = randomBytes(32);
    const a = await appraise(await attest(nonce), nonce);
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
    const a = await appraise(await attest(nonce), nonce, PRODUCTION_POLICY);
    expect(a.ok).toBe(false);
    if (!a.ok) expect(a.reasons.map((r) => r.message).join(' ')).toMatch(/simulated GPU not allowed/);
  });

  it('refuses GPU evidence that the CPU report data does not bind', async () => {
    const nonce = randomBytes(32);
    const b = await attest(nonce);
    const other = await attest(randomBytes(32));
    const a = await appraise({ ...b, gpu: other.gpu }, nonce);
    expect(a.ok).toBe(false);
    if (!a.ok) {
      const codes = a.reasons.map((r) => r.code);
      expect(codes).toContain('E_EVIDENCE_BINDING');
      expect(codes).toContain('E_EVIDENCE_NONCE');
    }
  });

  it('refuses a GPU chained to a root that is not pinned', async () => {
    const nonce = randomBytes(32);
    const a = await appraise(await attest(nonce), nonce, DEV_POLICY, false);
    expect(a.ok).toBe(false);
    if (!a.ok) expect(a.reasons.map((r) => r.code)).toContain('E_EVIDENCE_CHAIN');
  });

  it('a policy requiring two GPUs refuses a node with one', async () => {
    const nonce = randomBytes(32);
    const policy = { ...DEV_POLICY, gpu: { ...DEV_POLICY.gpu!, required: 2 } };
    const a = await appraise(await attest(nonce), nonce, policy);
    expect(a.ok).toBe(false);
  });

  it('a flipped byte in the GPU report fails its signature', async () => {
    const nonce = randomBytes(32);
    const b = await attest(nonce);
    const g = b.gpu![0]!;
    const ev = Buffer.from(g.evidence, 'base64');
    ev[ev.length - 120]! ^= 1;
    const a = await appraise({ ...b, gpu: [{ ...g, evidence: ev.toString('base64') }] }, nonce);
    expect(a.ok).toBe(false);
  });
});
