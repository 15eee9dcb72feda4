import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { appraiseEvidence } from '../appraiseEvidence.ts';
import { DEV_POLICY, evaluateEvidence, parsePolicy, PRODUCTION_POLICY } from '../policy/policy.ts';
import { markVerified, type VerifiedEvidence } from '../types.ts';
import { codeOf } from '../../test/codeOf.ts';
import { makeSyntheticSevSnp, type SyntheticSevSnp } from '../../test/sev-snp/syntheticSevSnp.ts';
import { syntheticSevSnpGuest } from '../../test/sev-snp/syntheticSevSnpGuest.ts';
import { sevSnpSiliconLine } from './evaluateSevSnp.ts';
import { parseSevSnpReport } from './sevSnpReport.ts';
import { sevSnpFacts } from './sevSnpVerifier.ts';

// A host presenting genuine SEV-SNP evidence from a platform it did not update, or without the
// CRL that would revoke its VCEK, against the production policy (decision 1765).

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const codes = (v: { ok: boolean; reasons?: Array<{ code: string; message: string }> }) =>
  v.ok ? [] : v.reasons!.map((r) => r.code);
const messages = (v: { ok: boolean; reasons?: Array<{ message: string }> }) =>
  v.ok ? '' : v.reasons!.map((r) => r.message).join('\n');

/** Facts of a synthetic report verified with its CRL. */
function factsOf(s: SyntheticSevSnp): VerifiedEvidence {
  return sevSnpFacts(
    parseSevSnpReport(s.report),
    { vek: s.vekPem, chain: s.chainPem, crl: b64(s.crlDer) },
    { now: s.now, roots: [new Uint8Array(Buffer.from(s.arkPem))] },
  );
}
const withExtra = (f: VerifiedEvidence, extra: Record<string, unknown>) =>
  markVerified({ ...f, extra: { ...f.extra, ...extra } });

describe('SEV-SNP TCB status under the production policy', () => {
  it('a current Milan and Genoa TCB is UpToDate and accepted (with the CRL)', async () => {
    for (const product of ['Milan', 'Genoa'] as const) {
      const nonce = new Uint8Array(randomBytes(32));
      const { s, bundle, opts } = await syntheticSevSnpGuest(nonce, { product });
      const a = await appraiseEvidence(
        { ...bundle, collateral: { vek: s.vekPem, chain: s.chainPem, crl: b64(s.crlDer) } },
        opts,
      );
      expect(codes(a as never), product).toEqual([]);
      expect(a.facts?.tcbStatus).toBe('UpToDate');
    }
  });

  it('one SPL under the minimum makes the platform OutOfDate, naming the component; the returned facts say so', async () => {
    const nonce = new Uint8Array(randomBytes(32));
    // Milan microcode 218 (0x0A0011DA): one below AMD-SB-3019's 0x0A0011DB.
    const { s, bundle, opts } = await syntheticSevSnpGuest(nonce, {
      tcb: { bootloader: 4, tee: 0, snp: 27, microcode: 218 },
    });
    const a = await appraiseEvidence(
      { ...bundle, collateral: { vek: s.vekPem, chain: s.chainPem, crl: b64(s.crlDer) } },
      opts,
    );
    expect(codes(a as never)).toEqual(['E_EVIDENCE_TCB']);
    expect(messages(a as never)).toContain('REPORTED_TCB microcode 218 < 219');
    expect(a.facts?.tcbStatus).toBe('OutOfDate');
    // A policy that accepts OutOfDate platforms (as for Intel) then accepts it.
    const lax = {
      ...PRODUCTION_POLICY,
      acceptedTcbStatuses: [...PRODUCTION_POLICY.acceptedTcbStatuses, 'OutOfDate' as const],
    };
    expect(
      (
        await appraiseEvidence(
          { ...bundle, collateral: { vek: s.vekPem, chain: s.chainPem, crl: b64(s.crlDer) } },
          { ...opts, policy: lax },
        )
      ).ok,
    ).toBe(true);
  });

  it('a guest launched on firmware under the minimum stays OutOfDate after the host updates (LAUNCH_TCB)', async () => {
    const s = await makeSyntheticSevSnp({ launchTcb: { bootloader: 4, tee: 0, snp: 20, microcode: 213 } });
    const v = evaluateEvidence(factsOf(s), PRODUCTION_POLICY, { now: s.now });
    expect(codes(v)).toEqual(['E_EVIDENCE_TCB']);
    expect(messages(v)).toContain('LAUNCH_TCB snp 20 < 22');
    expect(messages(v)).toContain('LAUNCH_TCB microcode 213 < 219');
  });

  it('a report whose REPORTED_TCB or COMMITTED_TCB is above its CURRENT_TCB: E_EVIDENCE_TCB at verification', async () => {
    const s = await makeSyntheticSevSnp({ currentTcb: { bootloader: 4, tee: 0, snp: 27, microcode: 220 } });
    expect(await codeOf((async () => factsOf(s))())).toBe('E_EVIDENCE_TCB');
  });

  it('each silicon line has its own microcode sequence: Milan-X at SPL 70 is current, classic Milan at 70 is not', async () => {
    expect(sevSnpSiliconLine('Milan', { family: 0x19, model: 1, stepping: 1 })).toBe('Milan');
    expect(sevSnpSiliconLine('Milan', { family: 0x19, model: 1, stepping: 2 })).toBe('Milan-X');
    expect(sevSnpSiliconLine('Genoa', { family: 0x19, model: 0x11, stepping: 2 })).toBe('Genoa-X');
    expect(sevSnpSiliconLine('Genoa', { family: 0x19, model: 0xa0, stepping: 2 })).toBe('Genoa-Zen4c');
    expect(sevSnpSiliconLine('Genoa', undefined)).toBe('Genoa');
    const s = await makeSyntheticSevSnp({ tcb: { bootloader: 4, tee: 0, snp: 27, microcode: 70 } });
    const f = factsOf(s);
    expect(codes(evaluateEvidence(f, PRODUCTION_POLICY, { now: s.now }))).toEqual(['E_EVIDENCE_TCB']);
    const milanX = withExtra(f, { cpuid: { family: 0x19, model: 1, stepping: 2 } });
    expect(evaluateEvidence(milanX, PRODUCTION_POLICY, { now: s.now }).ok).toBe(true);
  });

  it('a line the policy has no minimum for (Turin) is refused, naming the policy key to set', async () => {
    const s = await makeSyntheticSevSnp({ product: 'Turin' });
    const v = evaluateEvidence(factsOf(s), PRODUCTION_POLICY, { now: s.now });
    expect(codes(v)).toEqual(['E_EVIDENCE_TCB']);
    expect(messages(v)).toContain('sevSnp.minTcbByLine.Turin');
    const named = parsePolicy({
      name: 'turin-fleet',
      acceptedTcbStatuses: ['UpToDate'],
      sevSnp: {
        requireCrl: true,
        requireMinTcb: true,
        minTcbByLine: { Turin: { fmc: 1, bootloader: 9, snp: 23, microcode: 72 } },
      },
    });
    expect(evaluateEvidence(factsOf(s), named, { now: s.now }).ok).toBe(true);
    const fmcBelow = parsePolicy({
      acceptedTcbStatuses: ['UpToDate'],
      sevSnp: { minTcbByLine: { Turin: { fmc: 2 } } },
    });
    expect(messages(evaluateEvidence(factsOf(s), fmcBelow, { now: s.now }))).toContain(
      'REPORTED_TCB fmc 1 < 2',
    );
  });

  it('policy files: minTcbByLine is checked (unknown line or component, SPL over 255): E_INVALID_INPUT naming it', () => {
    for (const [sevSnp, named] of [
      [{ minTcbByLine: { Rome: { snp: 1 } } }, 'Rome'],
      [{ minTcbByLine: { Milan: { ucode: 1 } } }, 'ucode'],
      [{ minTcbByLine: { Milan: { snp: 256 } } }, 'minTcbByLine.Milan.snp'],
      [{ requireMinTcb: 'yes' }, 'requireMinTcb'],
    ] as const)
      expect(() => parsePolicy({ sevSnp })).toThrow(
        expect.objectContaining({ code: 'E_INVALID_INPUT', message: expect.stringContaining(named) }),
      );
  });
});

describe('SEV-SNP revocation under the production policy', () => {
  it('no CRL anywhere: refused, and the refusal says how to supply one', async () => {
    const nonce = new Uint8Array(randomBytes(32));
    const { s, bundle, opts } = await syntheticSevSnpGuest(nonce);
    const a = await appraiseEvidence({ ...bundle, collateral: { vek: s.vekPem, chain: s.chainPem } }, opts);
    expect(codes(a as never)).toEqual(['E_EVIDENCE_COLLATERAL']);
    expect(messages(a as never)).toContain('collateral.crl');
    expect(messages(a as never)).toContain('--kds');
    // The verifier's own offline collateral with the CRL is enough (the node attaches none).
    const own = await appraiseEvidence(bundle, {
      ...opts,
      collateral: { vek: s.vekPem, chain: s.chainPem, crl: b64(s.crlDer) },
    });
    expect(own.ok).toBe(true);
  });

  it('the dev policy is unaffected: no CRL and any TCB, as before', async () => {
    expect(DEV_POLICY.sevSnp).toBeUndefined();
    const s = await makeSyntheticSevSnp({ tcb: { bootloader: 0, tee: 0, snp: 0, microcode: 0 } });
    const f = sevSnpFacts(
      parseSevSnpReport(s.report),
      { vek: s.vekPem, chain: s.chainPem },
      {
        now: s.now,
        roots: [new Uint8Array(Buffer.from(s.arkPem))],
      },
    );
    const v = evaluateEvidence(f, DEV_POLICY, { now: s.now });
    expect(v.ok).toBe(true);
  });
});
