import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { runAttestVerifyGpu } from './attestVerifyGpu.ts';

// Covers the command core on the shared ppcie and H100 vectors; not the commander wiring or OCSP.
const V = (...p: string[]) => sharedPath('vectors', 'attestation', 'nvidia-nvtrust', ...p);
const PPCIE_NONCE = '4760e30534a0621357d458b1a7936551b5dc4cd1e69718adf7ed9fb0252a537e';
const AT = 1717200000;

describe('firn attest verify-gpu', () => {
  it('accepts the 8 GPU ppcie evidence with the default policy', async () => {
    const r = await runAttestVerifyGpu({
      evidence: V('ppcie', 'gpu_evidence.json'),
      nonce: PPCIE_NONCE,
      at: AT,
    });
    expect(r.exitCode).toBe(0);
    const o = JSON.parse(r.output);
    expect(o.verdict).toBe('accepted');
    expect(o.devices).toHaveLength(8);
    expect(o.devices[0]).toMatchObject({
      arch: 'HOPPER',
      signatureValid: true,
      chainValid: true,
      nonceMatches: true,
      driverVersion: '590.12',
      vbiosVersion: '96.00.A5.00.01',
      measurements: 'no-rim',
      revocation: 'not-checked',
    });
  });
  it('rejects a wrong nonce with a non-zero exit and an error object', async () => {
    const r = await runAttestVerifyGpu({
      evidence: V('ppcie', 'gpu_evidence.json'),
      nonce: '00'.repeat(32),
      at: AT,
    });
    expect(r.exitCode).not.toBe(0);
    const o = JSON.parse(r.output);
    expect(o.error.code).toBe('E_POLICY_REJECTED');
    expect(o.devices[0].nonceMatches).toBe(false);
  });
  it('a policy requiring RIM matches rejects the H100 against the vector RIMs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-gpu-'));
    const hex = (await import('node:fs')).readFileSync(V('hopperAttestationReport.txt'), 'utf8').trim();
    const chain = (await import('node:fs')).readFileSync(V('hopperCertChain.txt'), 'utf8');
    const ev = [
      {
        arch: 'HOPPER',
        nonce: '',
        evidence: Buffer.from(hex, 'hex').toString('base64'),
        certificate: Buffer.from(chain).toString('base64'),
      },
    ];
    writeFileSync(join(dir, 'ev.json'), JSON.stringify(ev));
    writeFileSync(
      join(dir, 'policy.json'),
      JSON.stringify({
        required: 1,
        requireMeasurementsMatch: true,
        allowRevocationUnchecked: true,
        allowSimulated: false,
      }),
    );
    const r = await runAttestVerifyGpu({
      evidence: join(dir, 'ev.json'),
      nonce: '931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb',
      at: AT,
      rims: V('rims'),
      policy: join(dir, 'policy.json'),
    });
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.output).devices[0].measurements).toBe('no-rim');
  });
  it('malformed input gives a typed error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-gpu-'));
    writeFileSync(join(dir, 'bad.json'), '[{"arch":"HOPPER","evidence":"AAAA","certificate":"AAAA"}]');
    const r = await runAttestVerifyGpu({ evidence: join(dir, 'bad.json'), nonce: PPCIE_NONCE, at: AT });
    expect(r.exitCode).toBe(2);
    expect(JSON.parse(r.output).error.code).toBe('E_EVIDENCE_MALFORMED');
  });
  it('switch-only evidence is accepted by the default policy (no "0 GPU(s) presented")', async () => {
    const r = await runAttestVerifyGpu({
      evidence: V('ppcie', 'switch_evidence.json'),
      nonce: PPCIE_NONCE,
      at: AT,
    });
    const o = JSON.parse(r.output);
    expect(o.reasons ?? []).toEqual([]);
    expect(r.exitCode).toBe(0);
    expect(o.devices.length).toBeGreaterThan(0);
    expect(o.devices.every((d: { arch: string }) => d.arch === 'LS10')).toBe(true);
    const empty = mkdtempSync(join(tmpdir(), 'firn-gpu-'));
    writeFileSync(join(empty, 'none.json'), '[]');
    const e = await runAttestVerifyGpu({ evidence: join(empty, 'none.json'), nonce: PPCIE_NONCE, at: AT });
    expect(JSON.parse(e.output).error.code).toBe('E_EVIDENCE_MALFORMED');
  });
  it('switch evidence labelled HOPPER is reported as the NVSwitch its chain names and refused by index', async () => {
    const { readFileSync } = await import('node:fs');
    const sw = JSON.parse(readFileSync(V('ppcie', 'switch_evidence.json'), 'utf8')) as { arch: string }[];
    const dir = mkdtempSync(join(tmpdir(), 'firn-gpu-'));
    writeFileSync(join(dir, 'sw.json'), JSON.stringify(sw.map((e) => ({ ...e, arch: 'HOPPER' }))));
    const r = await runAttestVerifyGpu({ evidence: join(dir, 'sw.json'), nonce: PPCIE_NONCE, at: AT });
    const o = JSON.parse(r.output);
    expect(r.exitCode).not.toBe(0);
    expect(o.devices[0]).toMatchObject({ arch: 'LS10', kind: 'nvswitch', labelledArch: 'HOPPER' });
    expect(JSON.stringify(o.reasons)).toMatch(/device 0 \(LS10\): labelled arch \\"HOPPER\\"/);
  });
  it('a certificate with a malformed key gives a typed error, never E_INTERNAL', async () => {
    const { readFileSync } = await import('node:fs');
    const { certificateMutations } = await import('../../../attestation/test/evidenceVerifierBehaviour.ts');
    const { pemToDerList } = await import('@firn/attestation');
    const hex = readFileSync(V('hopperAttestationReport.txt'), 'utf8').trim();
    const chain = pemToDerList(readFileSync(V('hopperCertChain.txt'), 'utf8'));
    const dir = mkdtempSync(join(tmpdir(), 'firn-gpu-'));
    let tried = 0;
    for (const [i, der] of chain.entries())
      for (const [what, bad] of certificateMutations(der)) {
        const pem = chain
          .map((d, j) => (j === i ? bad : d))
          .map(
            (d) =>
              `-----BEGIN CERTIFICATE-----\n${Buffer.from(d).toString('base64')}\n-----END CERTIFICATE-----\n`,
          )
          .join('');
        const ev = [
          {
            arch: 'HOPPER',
            nonce: '',
            evidence: Buffer.from(hex, 'hex').toString('base64'),
            certificate: Buffer.from(pem).toString('base64'),
          },
        ];
        writeFileSync(join(dir, 'ev.json'), JSON.stringify(ev));
        const r = await runAttestVerifyGpu({
          evidence: join(dir, 'ev.json'),
          nonce: '931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb',
          at: AT,
        });
        expect(r.exitCode, `${i} ${what}`).not.toBe(0);
        const code = JSON.parse(r.output).error.code as string;
        expect(code, `${i} ${what}`).not.toBe('E_INTERNAL');
        expect(code, `${i} ${what}`).toMatch(/^E_(EVIDENCE_|POLICY_)/);
        tried++;
      }
    expect(tried).toBeGreaterThan(10);
  });
  it('real Blackwell evidence (NVIDIA attestation-sdk) is accepted by the default policy', async () => {
    const { readFileSync } = await import('node:fs');
    const { fileURLToPath } = await import('node:url');
    const sdk = (f: string) =>
      fileURLToPath(new URL(`../../../attestation/vectors/nvidia-attestation-sdk/${f}`, import.meta.url));
    const dir = mkdtempSync(join(tmpdir(), 'firn-gpu-'));
    const ev = [
      {
        arch: 'BLACKWELL',
        nonce: '',
        evidence: Buffer.from(
          readFileSync(sdk('blackwellAttestationReport.txt'), 'utf8').trim(),
          'hex',
        ).toString('base64'),
        certificate: readFileSync(sdk('blackwellCertChain.txt')).toString('base64'),
      },
    ];
    writeFileSync(join(dir, 'bw.json'), JSON.stringify(ev));
    const args = { evidence: join(dir, 'bw.json'), at: 1764000000 };
    const r = await runAttestVerifyGpu({
      ...args,
      nonce: '931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb',
    });
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.output).devices[0]).toMatchObject({
      arch: 'BLACKWELL',
      fwidMatches: true,
      chainValid: true,
    });
    const wrong = await runAttestVerifyGpu({ ...args, nonce: '11'.repeat(32) });
    expect(wrong.exitCode).toBe(1);
  });
});
