import { createHash } from 'node:crypto';
import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../test/codeOf.ts';
import { evaluateEvidence, PRODUCTION_POLICY } from '../policy/policy.ts';
import { sgxVerifier } from '../sgx/sgxVerifier.ts';
import { tdxVerifier } from '../tdx/tdxVerifier.ts';
import { INTEL_SGX_ROOT_CA_PEM, INTEL_SGX_ROOT_CA_SHA256 } from './intelRootCa.ts';
import { parseDcapQuote } from './quote.ts';
import { iso, VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import { verifyDcapQuote, verifyDcapQuoteSync } from './verifyDcapQuote.ts';
import { pemCertificates } from './x509.ts';

type Case = (typeof VECTORS)[keyof typeof VECTORS];
function run(
  c: Case,
  over: { now?: number; quote?: Uint8Array; collateral?: unknown; roots?: Uint8Array[] } = {},
) {
  const roots = over.roots ?? ('root' in c ? [vector(c.root)] : undefined);
  return verifyDcapQuote(over.quote ?? vector(c.quote), {
    collateral: over.collateral ?? vectorJson(c.collateral),
    now: over.now ?? c.now,
    ...(roots ? { roots } : {}),
  });
}

describe('pinned Intel root', () => {
  it('has the SHA-256 fingerprint Intel publishes and equals the vectors copy', () => {
    const der = pemCertificates(INTEL_SGX_ROOT_CA_PEM, 'root')[0]!;
    expect(createHash('sha256').update(der).digest('hex')).toBe(INTEL_SGX_ROOT_CA_SHA256);
    expect(Buffer.from(der).equals(Buffer.from(vector('phala-dcap-qvl/TrustedRootCA.der')))).toBe(true);
  });
});

describe('verifyDcapQuote on real Intel quotes (phala-dcap-qvl vectors)', () => {
  it('SGX v3: ConfigurationAndSWHardeningNeeded with INTEL-SA-00289 and INTEL-SA-00615', async () => {
    const f = await run(VECTORS.sgx);
    expect(f.teeType).toBe('sgx');
    expect(f.tcbStatus).toBe('ConfigurationAndSWHardeningNeeded');
    expect(f.advisoryIds).toEqual(['INTEL-SA-00289', 'INTEL-SA-00615']);
    expect(f.extra.fmspc).toBe('00a067110000');
    expect(f.extra.quoteVersion).toBe(3);
    expect(f.debug).toBe(false);
    expect(f.platformId.length).toBe(16);
    expect(f.measurements.mrenclave).toMatch(/^[0-9a-f]{64}$/);
    expect(f.collateralIssuedAt).toBe(iso('2025-06-19T10:56:11Z'));
    expect(f.collateralNextUpdate).toBe(iso('2025-07-19T10:01:18Z'));
    expect(f.tcbEvaluationDataNumber).toBe(17);
  });

  it('TDX v4: UpToDate, no advisories', async () => {
    const f = await run(VECTORS.tdx);
    expect(f.teeType).toBe('tdx');
    expect(f.tcbStatus).toBe('UpToDate');
    expect(f.advisoryIds).toEqual([]);
    expect(f.extra.fmspc).toBe('b0c06f000000');
    expect(f.measurements.mrtd).toMatch(/^[0-9a-f]{96}$/);
  });

  it('TDX v5 with a TD report 1.5 whose platform is below every TCB level fails as TCB not supported', async () => {
    const q = parseDcapQuote(vector(VECTORS.tdxOutdated.quote));
    expect(q.header.version).toBe(5);
    expect(q.body.kind === 'tdx' && q.body.report.version).toBe('1.5');
    expect(await codeOf(run(VECTORS.tdxOutdated))).toBe('E_EVIDENCE_TCB');
  });

  it('refuses SGX collateral paired with a TDX quote', async () => {
    expect(await codeOf(run(VECTORS.tdxWrongTee))).toBe('E_EVIDENCE_COLLATERAL');
  });

  it('the same verifiers behind the EvidenceVerifier interface give the same facts', async () => {
    const s = await sgxVerifier.verify(sgxVerifier.parse(vector(VECTORS.sgx.quote)), {
      now: VECTORS.sgx.now,
      collateral: vectorJson(VECTORS.sgx.collateral),
    });
    expect(s.tcbStatus).toBe('ConfigurationAndSWHardeningNeeded');
    expect(() => sgxVerifier.parse(vector(VECTORS.tdx.quote))).toThrow(/not an SGX quote/);
    expect(() => tdxVerifier.parse(vector(VECTORS.sgx.quote))).toThrow(/not a TDX quote/);
    const t = await tdxVerifier.verify(tdxVerifier.parse(vector(VECTORS.tdx.quote)), {
      now: VECTORS.tdx.now,
      collateral: vectorJson(VECTORS.tdx.collateral),
    });
    expect(t.tcbStatus).toBe('UpToDate');
    await expect(
      tdxVerifier.verify(tdxVerifier.parse(vector(VECTORS.tdx.quote)), { now: VECTORS.tdx.now }),
    ).rejects.toThrow(/collateral/);
  });
});

describe('verifyDcapQuote on Intel QVL sample data (test root)', () => {
  it('SGX v3 with PPID-only certification data and TCB info v2: UpToDate under the test root', async () => {
    const f = await run(VECTORS.intelSgx);
    expect(f.tcbStatus).toBe('UpToDate');
    expect(f.advisoryIds).toEqual([]);
    expect(f.extra.tcbInfoVersion).toBe(2);
  });
  it('the same data under the production root fails the chain', async () => {
    expect(await codeOf(run(VECTORS.intelSgx, { roots: [] }))).toBe('E_EVIDENCE_CHAIN');
  });
  it('TDX v4 sample: signatures and chain pass, its synthetic TCB matches no level', async () => {
    expect(await codeOf(run(VECTORS.intelTdx))).toBe('E_EVIDENCE_TCB');
  });
  it('a real quote under the test root (wrong root) fails the chain', async () => {
    expect(await codeOf(run(VECTORS.sgx, { roots: [vector(VECTORS.intelSgx.root)] }))).toBe(
      'E_EVIDENCE_CHAIN',
    );
  });
});

describe('time windows', () => {
  it('collateral past nextUpdate is reported (the policy refuses it), not hidden', async () => {
    const now = VECTORS.sgx.now + 2;
    const f = await run(VECTORS.sgx, { now });
    expect(f.extra.collateralExpired).toBe(true);
    const v = evaluateEvidence(
      f,
      { ...PRODUCTION_POLICY, acceptedTcbStatuses: ['ConfigurationAndSWHardeningNeeded'] },
      { now },
    );
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reasons.map((r) => r.code)).toContain('E_EVIDENCE_EXPIRED');
  });
  it('collateral not yet issued at the verification time fails', async () => {
    expect(await codeOf(run(VECTORS.sgx, { now: iso('2025-06-19T10:56:10Z') }))).toBe('E_EVIDENCE_EXPIRED');
  });
  it('a PCK certificate past its notAfter fails (Intel sample, after 2026-09-05)', async () => {
    expect(await codeOf(run(VECTORS.intelSgx, { now: iso('2026-09-06T00:00:00Z') }))).toBe(
      'E_EVIDENCE_EXPIRED',
    );
  });
});

/** Flip each byte of [start, end) of the quote and expect every verification to fail. */
function flipAll(c: Case, start: number, end: number): string[] {
  const base = vector(c.quote);
  const collateral = vectorJson(c.collateral);
  const codes = new Set<string>();
  for (let i = start; i < end; i++) {
    const q = base.slice();
    q[i]! ^= 0x01;
    try {
      verifyDcapQuoteSync(q, { collateral, now: c.now });
      codes.add(`accepted@${i}`);
    } catch (e) {
      if (!isFirnError(e)) throw e;
      codes.add(e.code);
    }
  }
  return [...codes].sort();
}

describe('a flipped byte anywhere in a signed region fails', () => {
  // Offsets: header 48 + body (SGX 384, TD 1.0 584) + 4 (signature data size), then the signature
  // (64), the attestation key (64), [v4: cert data type/size 6], the QE report (384), its
  // signature (64), the auth data size (2) and auth data.
  it('SGX v3: header and report body, signature, attestation key, QE report, QE signature, auth data', () => {
    const q = parseDcapQuote(vector(VECTORS.sgx.quote));
    const sigStart = 48 + 384 + 4;
    const authEnd = sigStart + 64 + 64 + 384 + 64 + 2 + q.certification.qeAuthData.length;
    const codes = flipAll(VECTORS.sgx, 0, authEnd);
    expect(codes.filter((c) => c.startsWith('accepted'))).toEqual([]);
    expect(codes).toContain('E_EVIDENCE_SIGNATURE');
  });
  it('TDX v4: the same regions', () => {
    const q = parseDcapQuote(vector(VECTORS.tdx.quote));
    const sigStart = 48 + 584 + 4;
    const authEnd = sigStart + 64 + 64 + 6 + 384 + 64 + 2 + q.certification.qeAuthData.length;
    const codes = flipAll(VECTORS.tdx, 0, authEnd);
    expect(codes.filter((c) => c.startsWith('accepted'))).toEqual([]);
  });
  it('any flipped character of the signed TCB info or QE identity text fails', async () => {
    const col = vectorJson(VECTORS.sgx.collateral);
    for (const field of ['tcb_info', 'qe_identity'] as const) {
      const text = col[field] as string;
      for (let i = 0; i < text.length; i++) {
        const flipped = text.slice(0, i) + String.fromCharCode(text.charCodeAt(i) ^ 0x01) + text.slice(i + 1);
        let ok = false;
        try {
          verifyDcapQuoteSync(vector(VECTORS.sgx.quote), {
            collateral: { ...col, [field]: flipped },
            now: VECTORS.sgx.now,
          });
          ok = true;
        } catch (e) {
          if (!isFirnError(e)) throw e;
        }
        expect(ok, `${field} flipped at ${i}`).toBe(false);
      }
    }
  });
  it('a flipped byte in a CRL or a collateral signature fails', async () => {
    const col = vectorJson(VECTORS.sgx.collateral);
    for (const field of ['root_ca_crl', 'pck_crl', 'tcb_info_signature', 'qe_identity_signature'] as const) {
      const hex = col[field] as string;
      // the last 64 bytes of a CRL hold its signature; the signatures are 64 bytes throughout
      for (let i = Math.max(0, hex.length / 2 - 72); i < hex.length / 2; i++) {
        const b = Buffer.from(hex, 'hex');
        b[i]! ^= 1;
        expect(
          await codeOf(run(VECTORS.sgx, { collateral: { ...col, [field]: b.toString('hex') } })),
          `${field}@${i}`,
        ).not.toBe('ok');
      }
    }
  });
});

describe('the prepared-collateral cache (bucketed by the two collateral signatures, decision 1340)', () => {
  it('a collateral with a cached one signatures but another part is checked again, and fails', async () => {
    for (const c of [VECTORS.sgx, VECTORS.tdx]) {
      const col = vectorJson(c.collateral);
      // The genuine collateral passes and is cached (warm); its signatures name the bucket.
      expect(await codeOf(run(c, { collateral: col }))).toBe('ok');
      expect(await codeOf(run(c, { collateral: { ...col } }))).toBe('ok');
      const flipHexByte = (hex: string, i: number) => {
        const b = Buffer.from(hex, 'hex');
        b[i]! ^= 1;
        return b.toString('hex');
      };
      const tcb = col.tcb_info as string;
      const qe = col.qe_identity as string;
      const forged: [string, Record<string, unknown>, string][] = [
        ['tcb_info', { tcb_info: tcb.replace('"pceId":"', '"pceId":"0') }, 'E_EVIDENCE_COLLATERAL'],
        [
          'qe_identity',
          { qe_identity: qe.replace('"isvprodid":', '"isvprodid": ') },
          'E_EVIDENCE_COLLATERAL',
        ],
        // A byte inside the signed part (the TBS) of each CRL: its signature no longer holds.
        ['root_ca_crl', { root_ca_crl: flipHexByte(col.root_ca_crl as string, 40) }, 'E_EVIDENCE_CHAIN'],
        ['pck_crl', { pck_crl: flipHexByte(col.pck_crl as string, 40) }, 'E_EVIDENCE_CHAIN'],
      ];
      for (const [what, over, code] of forged) {
        expect((over[what] as string) !== col[what], what).toBe(true);
        for (const collateral of [{ ...col, ...over }, JSON.parse(JSON.stringify({ ...col, ...over }))])
          expect(await codeOf(run(c, { collateral })), `${c.quote} ${what}`).toBe(code);
        // The genuine one is still served from the same bucket afterwards.
        expect(await codeOf(run(c, { collateral: { ...col } }))).toBe('ok');
      }
    }
  });
});

describe('attack: collateral bytes changed in place after they passed', () => {
  it('a CRL given as a Uint8Array and overwritten in place is checked again, cold or warm', async () => {
    for (const field of ['root_ca_crl', 'pck_crl'] as const) {
      const base = vectorJson(VECTORS.sgx.collateral);
      const crl = new Uint8Array(Buffer.from(base[field] as string, 'hex'));
      const col = { ...base, [field]: crl };
      expect(await codeOf(run(VECTORS.sgx, { collateral: col }))).toBe('ok');
      // Same length, same signatures elsewhere: only the CRL's signed bytes differ now.
      crl[40]! ^= 0x01;
      for (const collateral of [{ ...col }, col])
        expect(await codeOf(run(VECTORS.sgx, { collateral })), field).toBe('E_EVIDENCE_CHAIN');
      expect(() =>
        verifyDcapQuoteSync(vector(VECTORS.sgx.quote), { collateral: { ...col }, now: VECTORS.sgx.now }),
      ).toThrow(expect.objectContaining({ code: 'E_EVIDENCE_CHAIN' }));
    }
  });
});

describe('attack: a quote buffer reused in place after its PCK chain passed', () => {
  it('a PCK chain changed in place past the cache bucket prefix is checked again', async () => {
    for (const c of [VECTORS.sgx, VECTORS.tdx]) {
      const quote = vector(c.quote);
      const q = parseDcapQuote(quote);
      const cd = q.certification.certData;
      const at = cd.byteOffset - quote.byteOffset;
      expect(await codeOf(run(c, { quote }))).toBe('ok');
      // A base64 letter of the leaf certificate's signed part, past the 192-byte bucket prefix.
      let i = 400;
      while (!/[A-Za-z]/.test(String.fromCharCode(quote[at + i]!))) i++;
      const was = quote[at + i]!;
      quote[at + i] = was === 0x41 ? 0x42 : 0x41;
      expect(await codeOf(run(c, { quote })), c.quote).not.toBe('ok');
      expect(() =>
        verifyDcapQuoteSync(quote, { collateral: vectorJson(c.collateral), now: c.now }),
      ).toThrow();
      quote[at + i] = was;
      expect(await codeOf(run(c, { quote }))).toBe('ok');
    }
  });
});
