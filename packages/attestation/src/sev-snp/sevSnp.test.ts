import { bytesToHex, isFirnError, measurementDigest } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { DEV_POLICY, evaluateEvidence, PRODUCTION_POLICY } from '../policy/policy.ts';
import {
  certificateMutations,
  describeEvidenceVerifierBehaviour,
} from '../../test/evidenceVerifierBehaviour.ts';
import { verifierFor } from '../verifiers.ts';
import { AMD_SEV_SNP_CERTIFICATES } from './amdRoots.ts';
import {
  certificatesFrom,
  checkIssuedBy,
  parseAmdCertificate,
  parseVekExtensions,
} from './amdCertificates.ts';
import { parseSevSnpReport, SEV_SNP_REPORT_BYTES, SEV_SNP_SIGNED_BYTES } from './sevSnpReport.ts';
import { type SevSnpCollateral, sevSnpSelfIdentity, sevSnpVerifier } from './sevSnpVerifier.ts';
import { SEV_SNP_VECTORS, sevSnpVector, sevSnpVectorText } from '../../test/sev-snp/sevSnpVectors.ts';
import { verifySevSnpReport } from './verifySevSnpReport.ts';
import { markVerified, type VerifiedEvidence } from '../types.ts';

/**
 * The facts as a verification with the product's CRL would give them: no AMD CRL current at the
 * vectors' times is committed, and the production policy requires one (decision 1765).
 */
const asIfCrlChecked = (f: VerifiedEvidence): VerifiedEvidence =>
  markVerified({ ...f, extra: { ...f.extra, crlChecked: true } });
const codesOf = (v: ReturnType<typeof evaluateEvidence>) => (v.ok ? [] : v.reasons.map((r) => r.code));

const pemOf = (der: Uint8Array) =>
  `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64')}\n-----END CERTIFICATE-----\n`;
const vekPem = (path: string) => {
  const b = sevSnpVector(path);
  return b[0] === 0x30 ? pemOf(b) : Buffer.from(b).toString('latin1');
};
const collateralOf = (v: { vek: string; chain: string | undefined }): SevSnpCollateral => ({
  vek: vekPem(v.vek),
  ...(v.chain === undefined ? {} : { chain: sevSnpVectorText(v.chain) }),
});
const genoaArk = Buffer.from(AMD_SEV_SNP_CERTIFICATES.Genoa.ark);
const turinArk = Buffer.from(AMD_SEV_SNP_CERTIFICATES.Turin.ark);

async function codeOf(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (e) {
    if (!isFirnError(e)) throw new Error(`untyped error: ${(e as Error)?.message}`);
    return e.code;
  }
  return 'ACCEPTED';
}

for (const [name, v] of Object.entries(SEV_SNP_VECTORS)) {
  describeEvidenceVerifierBehaviour({
    name: `AMD SEV-SNP (${name})`,
    verifier: verifierFor('sev-snp'),
    quote: sevSnpVector(v.report),
    ctx: { now: v.now, collateral: collateralOf(v) },
    // The signed body and the r and s scalars (72 bytes each, little-endian).
    signedRegions: [
      [0, SEV_SNP_SIGNED_BYTES],
      [SEV_SNP_SIGNED_BYTES, SEV_SNP_SIGNED_BYTES + 144],
    ],
    flipSamples: 96,
    wrongRootCtx: {
      now: v.now,
      collateral: collateralOf(v),
      roots: (['Milan', 'Genoa', 'Turin'] as const)
        .filter((p) => p !== v.product)
        .map((p) => Buffer.from(AMD_SEV_SNP_CERTIFICATES[p].ark)),
    },
    expiredAt: v.vekNotAfter + 3600,
  });
}

describe('SEV-SNP: real reports verify to their facts', () => {
  it('go-sev-guest Milan v2 report (a debug guest): facts as the report says', async () => {
    const v = SEV_SNP_VECTORS.goSevGuestMilanV2;
    const f = await sevSnpVerifier.verify(parseSevSnpReport(sevSnpVector(v.report)), {
      now: v.now,
      collateral: collateralOf(v),
    });
    expect(f.teeType).toBe('sev-snp');
    expect(f.measurements.measurement).toBe(
      'b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01',
    );
    expect(bytesToHex(f.platformId).slice(2, 18)).toBe('3ac3fe21e13fb099');
    expect(bytesToHex(f.reportData).slice(2, 12)).toBe('0102030405');
    expect(f.debug).toBe(true);
    expect(f.extra.product).toBe('Milan');
    expect(f.extra.reportVersion).toBe(2);
    expect(f.extra.reportedTcb).toMatchObject({ bootloader: 2, tee: 0, snp: 5, microcode: 68 });
  });

  it('GCP Milan v5 report with its KDS chain: facts as the report says', async () => {
    const v = SEV_SNP_VECTORS.gcpMilanV5;
    const f = await sevSnpVerifier.verify(parseSevSnpReport(sevSnpVector(v.report)), {
      now: v.now,
      collateral: collateralOf(v),
    });
    expect(f.measurements.measurement).toBe(
      'b747d55452e0b9e9079770a49e397c5e6d9573581e246da7baac4f28b5cdc5b1b6d19251b8ee600fd16a3708f58406f3',
    );
    expect(bytesToHex(f.platformId).slice(2, 18)).toBe('980cf7b61876cb37');
    expect(f.debug).toBe(false);
    expect(f.extra.reportVersion).toBe(5);
    expect(f.extra.cpuid).toEqual({ family: 0x19, model: 1, stepping: 1 });
    expect(f.extra.reportedTcb).toMatchObject({ bootloader: 4, tee: 0, snp: 27, microcode: 222 });
    // Without a CRL production refuses it for that alone; checked against the CRL, production
    // accepts it (SMT allowed, VMPL 0, VCEK, chip id present, TCB above Milan's minimum).
    expect(codesOf(evaluateEvidence(f, PRODUCTION_POLICY, { now: v.now }))).toEqual([
      'E_EVIDENCE_COLLATERAL',
    ]);
    const accepted = evaluateEvidence(asIfCrlChecked(f), PRODUCTION_POLICY, { now: v.now });
    expect(accepted.ok).toBe(true);
    if (accepted.ok) expect(accepted.facts.tcbStatus).toBe('UpToDate');
  });

  it('Azure Genoa v3 report: Genoa chain and TCB, accepted by production', async () => {
    const v = SEV_SNP_VECTORS.azureGenoaV3;
    const f = await sevSnpVerifier.verify(parseSevSnpReport(sevSnpVector(v.report)), {
      now: v.now,
      collateral: collateralOf(v),
    });
    expect(f.extra).toMatchObject({ product: 'Genoa', reportVersion: 3, signingKey: 'vcek', vmpl: 0 });
    expect(f.extra.cpuid).toEqual({ family: 0x19, model: 0x11, stepping: 1 });
    expect(f.extra.reportedTcb).toMatchObject({ bootloader: 10, tee: 0, snp: 23, microcode: 84 });
    expect(f.measurements.measurement?.slice(0, 16)).toBe('f57dc09a507c6ecd');
    expect(codesOf(evaluateEvidence(f, PRODUCTION_POLICY, { now: v.now }))).toEqual([
      'E_EVIDENCE_COLLATERAL',
    ]);
    expect(evaluateEvidence(asIfCrlChecked(f), PRODUCTION_POLICY, { now: v.now }).ok).toBe(true);
    const milanOnly = [Buffer.from(AMD_SEV_SNP_CERTIFICATES.Milan.ark)];
    expect(
      await codeOf(() =>
        verifySevSnpReport(sevSnpVector(v.report), {
          now: v.now,
          vek: sevSnpVector(v.vek),
          roots: milanOnly,
        }),
      ),
    ).toBe('E_EVIDENCE_CHAIN');
  });

  it('AWS VLEK-signed v3 report: verifies through the ASVK; production refuses VMPL 1 and the zero chip id', async () => {
    const v = SEV_SNP_VECTORS.trusteeMilanVlekV3;
    const f = await sevSnpVerifier.verify(parseSevSnpReport(sevSnpVector(v.report)), {
      now: v.now,
      collateral: collateralOf(v),
    });
    expect(f.extra).toMatchObject({
      product: 'Milan',
      signingKey: 'vlek',
      cspId: 'CN=cc-us-east-2.amazonaws.com',
      vmpl: 1,
      chipIdMasked: true,
    });
    // VMPL 1, the zero chip id, and REPORTED_TCB microcode 217 under AMD-SB-3019's Milan 219.
    const verdict = evaluateEvidence(asIfCrlChecked(f), PRODUCTION_POLICY, { now: v.now });
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) expect(verdict.reasons).toHaveLength(3);
    expect(codesOf(verdict)).toContain('E_EVIDENCE_TCB');
    if (!verdict.ok)
      expect(verdict.reasons.map((r) => r.message).join('\n')).toContain('REPORTED_TCB microcode 217 < 219');
    const aws = { ...PRODUCTION_POLICY, sevSnp: { maxVmpl: 1, allowMaskedChipId: true } };
    expect(evaluateEvidence(f, aws, { now: v.now }).ok).toBe(true);
    expect(
      evaluateEvidence(f, { ...aws, sevSnp: { ...aws.sevSnp, allowVlek: false } }, { now: v.now }).ok,
    ).toBe(false);
  });

  it("a guest's self identity from its own report equals what the verifier derives", async () => {
    const v = SEV_SNP_VECTORS.gcpMilanV5;
    const self = sevSnpSelfIdentity(sevSnpVector(v.report));
    const f = await sevSnpVerifier.verify(parseSevSnpReport(sevSnpVector(v.report)), {
      now: v.now,
      collateral: collateralOf(v),
    });
    expect(bytesToHex(measurementDigest('sev-snp', self.registers))).toBe(bytesToHex(f.measurement));
    expect(bytesToHex(self.platformId)).toBe(bytesToHex(f.platformId));
  });

  it('verifies without a chain, with the pinned ASK', () => {
    const v = SEV_SNP_VECTORS.gcpMilanV5;
    const r = verifySevSnpReport(sevSnpVector(v.report), { now: v.now, vek: sevSnpVector(v.vek) });
    expect(r.product).toBe('Milan');
  });

  it('the pinned certificates are the committed KDS files', () => {
    for (const p of ['Milan', 'Genoa', 'Turin'] as const) {
      const [ask, ark] = certificatesFrom(sevSnpVectorText(`amd-kds/${p.toLowerCase()}/cert_chain.pem`), p);
      const [asvk, ark2] = certificatesFrom(
        sevSnpVectorText(`amd-kds/${p.toLowerCase()}/vlek_cert_chain.pem`),
        p,
      );
      const pinned = AMD_SEV_SNP_CERTIFICATES[p];
      expect(Buffer.from(certificatesFrom(pinned.ark, p)[0]!)).toEqual(Buffer.from(ark!));
      expect(Buffer.from(ark2!)).toEqual(Buffer.from(ark!));
      expect(Buffer.from(certificatesFrom(pinned.ask, p)[0]!)).toEqual(Buffer.from(ask!));
      expect(Buffer.from(certificatesFrom(pinned.asvk, p)[0]!)).toEqual(Buffer.from(asvk!));
      // Each chain verifies: ARK self-signed, ASK and ASVK signed by it (RSA-PSS SHA-384).
      const arkC = parseAmdCertificate(ark!);
      checkIssuedBy(arkC, arkC, Date.parse('2026-01-01') / 1000, `ARK-${p}`);
      checkIssuedBy(parseAmdCertificate(ask!), arkC, Date.parse('2026-01-01') / 1000, `ASK-${p}`);
      checkIssuedBy(parseAmdCertificate(asvk!), arkC, Date.parse('2026-01-01') / 1000, `ASVK-${p}`);
    }
  });

  it('a real Turin VCEK chains to the pinned ARK-Turin and its TCB extensions decode (fmcSPL)', () => {
    const vcek = parseAmdCertificate(sevSnpVector('virtee-turin-vcek/vcek.der'));
    const ask = parseAmdCertificate(certificatesFrom(AMD_SEV_SNP_CERTIFICATES.Turin.ask, 'ask')[0]!);
    checkIssuedBy(vcek, ask, Date.parse('2026-01-01') / 1000, 'VCEK');
    const ext = parseVekExtensions(vcek, 'Turin');
    expect(ext).toMatchObject({ productName: 'Turin', fmc: 0, bootloader: 0, tee: 0, snp: 0, microcode: 9 });
    expect(ext.hwId).toHaveLength(8);
  });
});

describe('SEV-SNP: attacks on the report and its chain are refused', () => {
  const v = SEV_SNP_VECTORS.gcpMilanV5;
  const report = sevSnpVector(v.report);
  const opts = { now: v.now, vek: sevSnpVector(v.vek), chain: sevSnpVectorText(v.chain!) };

  it('a flipped measurement byte: E_EVIDENCE_SIGNATURE', async () => {
    const bad = new Uint8Array(report);
    bad[0x90]! ^= 1;
    expect(await codeOf(() => verifySevSnpReport(bad, opts))).toBe('E_EVIDENCE_SIGNATURE');
  });

  it('the debug bit set in the guest policy (cannot be re-signed): E_EVIDENCE_SIGNATURE', async () => {
    const bad = new Uint8Array(report);
    bad[0x0a]! |= 0x08; // policy bit 19
    expect(await codeOf(() => verifySevSnpReport(bad, opts))).toBe('E_EVIDENCE_SIGNATURE');
  });

  it("another product's ARK as the only root: E_EVIDENCE_CHAIN", async () => {
    expect(await codeOf(() => verifySevSnpReport(report, { ...opts, roots: [genoaArk] }))).toBe(
      'E_EVIDENCE_CHAIN',
    );
  });

  it('a chain whose ARK is not pinned is not trusted for it (roots decide)', async () => {
    // The committed chain carries ARK-Milan, but only ARK-Turin is pinned.
    expect(await codeOf(() => verifySevSnpReport(report, { ...opts, roots: [turinArk] }))).toBe(
      'E_EVIDENCE_CHAIN',
    );
  });

  it('one hour after the VCEK notAfter: E_EVIDENCE_EXPIRED; before its notBefore too', async () => {
    expect(await codeOf(() => verifySevSnpReport(report, { ...opts, now: v.vekNotAfter + 3600 }))).toBe(
      'E_EVIDENCE_EXPIRED',
    );
    expect(await codeOf(() => verifySevSnpReport(report, { ...opts, now: v.vekNotBefore - 3600 }))).toBe(
      'E_EVIDENCE_EXPIRED',
    );
  });

  it("another chip's VCEK: refused (TCB or chip id or signature)", async () => {
    const other = SEV_SNP_VECTORS.goSevGuestMilanV2;
    const code = await codeOf(() => verifySevSnpReport(report, { ...opts, vek: sevSnpVector(other.vek) }));
    expect(['E_EVIDENCE_TCB', 'E_EVIDENCE_SIGNATURE']).toContain(code);
  });

  it('a REPORTED_TCB edited to a newer microcode than the VCEK certifies: refused', async () => {
    // The signature check refuses the edit first; the synthetic tests prove the TCB check alone.
    const bad = new Uint8Array(report);
    bad[0x187] = 0xdf;
    const code = await codeOf(() => verifySevSnpReport(bad, opts));
    expect(['E_EVIDENCE_TCB', 'E_EVIDENCE_SIGNATURE']).toContain(code);
  });

  it('a report that claims a VLEK signed it while a VCEK is given: E_EVIDENCE_CHAIN', async () => {
    const bad = new Uint8Array(report);
    bad[0x48] = (bad[0x48]! & ~0x1c) | (1 << 2);
    expect(await codeOf(() => verifySevSnpReport(bad, opts))).toBe('E_EVIDENCE_CHAIN');
  });

  it('an unsigned report (SIGNING_KEY none): E_EVIDENCE_SIGNATURE', async () => {
    const bad = new Uint8Array(report);
    bad[0x48] = bad[0x48]! | 0x1c;
    expect(await codeOf(() => verifySevSnpReport(bad, opts))).toBe('E_EVIDENCE_SIGNATURE');
  });

  it('signature scalars with bytes above 48: E_EVIDENCE_MALFORMED', async () => {
    const bad = new Uint8Array(report);
    bad[0x2a0 + 60] = 1;
    expect(await codeOf(() => parseSevSnpReport(bad))).toBe('E_EVIDENCE_MALFORMED');
  });

  it('a flipped byte in the unsigned reserved tail of the signature field: E_EVIDENCE_MALFORMED', async () => {
    for (const at of [0x2a0 + 144, 0x400, SEV_SNP_REPORT_BYTES - 1]) {
      const bad = new Uint8Array(report);
      bad[at]! ^= 0x01;
      expect(await codeOf(() => verifySevSnpReport(bad, opts)), `offset ${at}`).toBe('E_EVIDENCE_MALFORMED');
    }
  });

  it('every single-byte flip anywhere in the report is refused', async () => {
    for (let at = 0; at < SEV_SNP_REPORT_BYTES; at += 7) {
      const bad = new Uint8Array(report);
      bad[at]! ^= 0x80;
      expect(await codeOf(() => verifySevSnpReport(bad, opts)), `offset ${at}`).not.toBe('ACCEPTED');
    }
  });

  it('version 1, another signature algorithm, wrong sizes: typed errors', async () => {
    const v1 = new Uint8Array(report);
    v1[0] = 1;
    expect(await codeOf(() => parseSevSnpReport(v1))).toBe('E_EVIDENCE_MALFORMED');
    const alg = new Uint8Array(report);
    alg[0x34] = 2;
    expect(await codeOf(() => parseSevSnpReport(alg))).toBe('E_UNSUPPORTED');
    expect(await codeOf(() => parseSevSnpReport(report.subarray(0, SEV_SNP_REPORT_BYTES - 1)))).toBe(
      'E_EVIDENCE_MALFORMED',
    );
    expect(await codeOf(() => parseSevSnpReport(new Uint8Array(SEV_SNP_REPORT_BYTES + 1)))).toBe(
      'E_TOO_LARGE',
    );
  });

  it('the VCEK given as the chain (no ASK): E_EVIDENCE_CHAIN', async () => {
    expect(
      await codeOf(() =>
        verifySevSnpReport(report, { ...opts, chain: pemOf(certificatesFrom(opts.vek, 'vek')[0]!) }),
      ),
    ).toBe('E_EVIDENCE_CHAIN');
  });

  it('the ASK given as the VCEK: refused', async () => {
    const ask = certificatesFrom(opts.chain, 'chain')[0]!;
    expect(await codeOf(() => verifySevSnpReport(report, { ...opts, vek: ask }))).toBe('E_EVIDENCE_CHAIN');
  });

  it('structured and random mutations of the VCEK, ASK and ARK: typed refusals, never an acceptance', async () => {
    const [askDer, arkDer] = certificatesFrom(opts.chain, 'chain');
    const vekDer = certificatesFrom(opts.vek, 'vek')[0]!;
    let tried = 0;
    const check = async (o: Parameters<typeof verifySevSnpReport>[1], what: string) => {
      expect(await codeOf(() => verifySevSnpReport(report, o)), what).not.toBe('ACCEPTED');
      tried++;
    };
    for (const [what, bad] of certificateMutations(vekDer))
      await check({ ...opts, vek: bad }, `VCEK ${what}`);
    for (const [name, der] of [
      ['VCEK', vekDer],
      ['ASK', askDer!],
      ['ARK', arkDer!],
    ] as const)
      for (let k = 0; k < 24; k++) {
        const at = Math.floor((k * der.length) / 24);
        const bad = new Uint8Array(der);
        bad[at]! ^= 0x04;
        if (name === 'VCEK') await check({ ...opts, vek: bad }, `${name} offset ${at}`);
        else if (name === 'ASK') await check({ ...opts, chain: pemOf(bad) }, `${name} offset ${at}`);
        else await check({ ...opts, roots: [bad] }, `${name} offset ${at}`);
      }
    expect(tried).toBeGreaterThan(60);
  });

  it('missing or malformed collateral: E_EVIDENCE_COLLATERAL', async () => {
    const parsed = parseSevSnpReport(report);
    for (const collateral of [undefined, {}, { vek: 3 }, { vek: 'x', extra: 1 }, 'pem'])
      expect(await codeOf(() => sevSnpVerifier.verify(parsed, { now: v.now, collateral }))).toBe(
        'E_EVIDENCE_COLLATERAL',
      );
  });
});

describe('SEV-SNP: the policy decides on the facts', () => {
  const v = SEV_SNP_VECTORS.gcpMilanV5;
  const factsP = sevSnpVerifier
    .verify(parseSevSnpReport(sevSnpVector(v.report)), {
      now: v.now,
      collateral: collateralOf(v),
    })
    .then(asIfCrlChecked);
  type Extra = Record<string, unknown> & { guestPolicy: Record<string, unknown> };
  const edit = async (f: (x: Extra) => void, debug?: boolean) => {
    const facts = structuredClone(await factsP);
    f(facts.extra as Extra);
    if (debug !== undefined) facts.debug = debug;
    return facts;
  };

  it('the real debug guest (go-sev-guest, policy bit 19) is refused by production, accepted nowhere by default', async () => {
    const d = SEV_SNP_VECTORS.goSevGuestMilanV2;
    const f = await sevSnpVerifier.verify(parseSevSnpReport(sevSnpVector(d.report)), {
      now: d.now,
      collateral: collateralOf(d),
    });
    for (const p of [PRODUCTION_POLICY, DEV_POLICY]) {
      const verdict = evaluateEvidence(f, p, { now: d.now });
      expect(verdict.ok).toBe(false);
      if (!verdict.ok)
        expect(verdict.reasons.map((r) => r.message)).toContain('debug enclaves are not accepted');
    }
  });

  it('debug bit on the facts: refused', async () => {
    const f = await edit((x) => {
      x.guestPolicy.debugAllowed = true;
    }, true);
    expect(evaluateEvidence(f, PRODUCTION_POLICY, { now: v.now }).ok).toBe(false);
  });

  it('migration agent allowed: refused unless the policy allows it', async () => {
    const f = await edit((x) => {
      x.guestPolicy.migrateMaAllowed = true;
    });
    expect(evaluateEvidence(f, PRODUCTION_POLICY, { now: v.now }).ok).toBe(false);
    expect(
      evaluateEvidence(f, { ...PRODUCTION_POLICY, sevSnp: { allowMigrationAgent: true } }, { now: v.now }).ok,
    ).toBe(true);
  });

  it('SMT: allowed by default, refused when the policy says so', async () => {
    const f = await factsP;
    expect(evaluateEvidence(f, PRODUCTION_POLICY, { now: v.now }).ok).toBe(true);
    const verdict = evaluateEvidence(
      f,
      { ...PRODUCTION_POLICY, sevSnp: { allowSmt: false } },
      { now: v.now },
    );
    expect(verdict.ok).toBe(false);
  });

  it('VMPL over the maximum, masked chip id, VLEK when refused, TCB under the minimum: each refused', async () => {
    const cases: Array<[string, (x: Extra) => void, object]> = [
      [
        'vmpl',
        (x) => {
          x.vmpl = 2;
        },
        {},
      ],
      [
        'masked',
        (x) => {
          x.chipIdMasked = true;
        },
        {},
      ],
      [
        'vlek',
        (x) => {
          x.signingKey = 'vlek';
        },
        { allowVlek: false },
      ],
      ['tcb', () => {}, { minTcb: { snp: 28 } }],
      [
        'crl',
        (x) => {
          x.crlChecked = false;
        },
        { requireCrl: true },
      ],
    ];
    for (const [what, f, sevSnp] of cases) {
      const verdict = evaluateEvidence(await edit(f), { ...PRODUCTION_POLICY, sevSnp }, { now: v.now });
      expect(verdict.ok, what).toBe(false);
    }
    expect(
      evaluateEvidence(
        await factsP,
        { ...PRODUCTION_POLICY, sevSnp: { minTcb: { snp: 27, microcode: 222 } } },
        {
          now: v.now,
        },
      ).ok,
    ).toBe(true);
  });

  it('facts without the SEV-SNP fields fail closed', async () => {
    const f = structuredClone(await factsP);
    f.extra = {};
    expect(evaluateEvidence(f, PRODUCTION_POLICY, { now: v.now }).ok).toBe(false);
  });
});
