import { verify as nodeVerify } from 'node:crypto';
import { FirnError } from '@firn/core';
import { AMD_SEV_SNP_CERTIFICATES } from './amdRoots.ts';
import {
  type AmdCertificate,
  type AmdCrl,
  certificatesFrom,
  checkCrlSignedBy,
  checkIssuedBy,
  isP384Key,
  parseAmdCertificate,
  parseAmdCrl,
  parseVekExtensions,
  type VekExtensions,
} from './amdCertificates.ts';
import {
  decodeTcb,
  parseSevSnpReport,
  productOfCpuid,
  SEV_SNP_PRODUCTS,
  type SevSnpProduct,
  type SevSnpReport,
  type SevSnpTcb,
} from './sevSnpReport.ts';

export interface VerifySevSnpOptions {
  /** Verification time, unix seconds: every certificate must be valid then. */
  now: number;
  /** The VCEK or VLEK that signed the report: DER, or PEM text/bytes. */
  vek: Uint8Array | string;
  /**
   * The ASK (or ASVK for a VLEK), optionally followed by the ARK, as the KDS `cert_chain` serves
   * them (PEM). Default: AMD's ASK/ASVK pinned in amdRoots.ts. The ARK here is never trusted: the
   * chain must end at one of `roots`.
   */
  chain?: Uint8Array | string;
  /** Pinned ARKs (PEM or DER). Default: AMD's ARK-Milan, ARK-Genoa and ARK-Turin. */
  roots?: readonly (Uint8Array | string)[];
  /** The product's KDS CRL (DER); when given, it must be signed by the ARK and revoke neither ASK nor VEK. */
  crl?: Uint8Array;
}

/** What a verified report establishes, beyond the report's own (now authenticated) fields. */
export interface VerifiedSevSnpReport {
  report: SevSnpReport;
  /** The product whose pinned ARK the chain ends at. */
  product: SevSnpProduct;
  signingKey: 'vcek' | 'vlek';
  /** REPORTED_TCB decoded with the product's layout; equal to what the VEK certifies. */
  reportedTcb: SevSnpTcb;
  currentTcb: SevSnpTcb;
  committedTcb: SevSnpTcb;
  launchTcb: SevSnpTcb;
  vek: VekExtensions;
  vekNotAfter: number;
  /** The CRL's dates, when one was checked. */
  crl?: { thisUpdate: number; nextUpdate: number };
}

const chainErr = (m: string) => new FirnError('E_EVIDENCE_CHAIN', m);

/** The product an ARK's subject names ("ARK-Milan"), or undefined. */
function productOfArk(cert: AmdCertificate): SevSnpProduct | undefined {
  const m = /^ARK-(\w+)$/.exec(cert.commonName);
  return SEV_SNP_PRODUCTS.find((p) => p === m?.[1]);
}

function defaultRoots(): AmdCertificate[] {
  return SEV_SNP_PRODUCTS.map((p) =>
    parseAmdCertificate(certificatesFrom(AMD_SEV_SNP_CERTIFICATES[p].ark, `ARK-${p}`, 1)[0]!, `ARK-${p}`),
  );
}

function defaultIntermediates(): AmdCertificate[] {
  return SEV_SNP_PRODUCTS.flatMap((p) => [
    parseAmdCertificate(certificatesFrom(AMD_SEV_SNP_CERTIFICATES[p].ask, `ASK ${p}`, 1)[0]!, `ASK ${p}`),
    parseAmdCertificate(certificatesFrom(AMD_SEV_SNP_CERTIFICATES[p].asvk, `ASVK ${p}`, 1)[0]!, `ASVK ${p}`),
  ]);
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** ECDSA P-384 SHA-384 over the signed part of the report, with r and s as the ABI stores them. */
function reportSignatureHolds(report: SevSnpReport, vek: AmdCertificate): boolean {
  try {
    return nodeVerify(
      'sha384',
      report.signed,
      { key: vek.publicKey, dsaEncoding: 'ieee-p1363' },
      Buffer.concat([report.signatureR, report.signatureS]),
    );
  } catch {
    return false;
  }
}

/**
 * Verify an AMD SEV-SNP attestation report (AMD SEV-SNP ABI spec 56860; VCEK spec 57230). Proves:
 * the report was signed (ECDSA P-384) by the given VCEK or VLEK; that key chains through the ASK
 * (or ASVK) to a pinned ARK with RSASSA-PSS SHA-384 signatures, every certificate valid at `now`;
 * the VEK certifies exactly the report's REPORTED_TCB (blSPL, teeSPL, snpSPL, ucodeSPL, and fmcSPL
 * on Turin) and, for a VCEK, the report's CHIP_ID (hwID); REPORTED_TCB and COMMITTED_TCB are not
 * above CURRENT_TCB in any component (go-sev-guest's validateTcb); the report's CPUID (v3+) names the same
 * product as the ARK; with a CRL, neither ASK nor VEK is revoked. It does not judge the guest
 * policy, the measurement, the TCB's age or the report data: that is evaluateSevSnp's and the
 * caller's (report data binding).
 * Errors: E_EVIDENCE_MALFORMED, E_TOO_LARGE, E_UNSUPPORTED (parse); E_EVIDENCE_CHAIN (chain, key
 * kind, product); E_EVIDENCE_EXPIRED (a certificate outside its validity at `now`);
 * E_EVIDENCE_SIGNATURE (report signature, unsigned report); E_EVIDENCE_TCB (TCB or chip id differs
 * from the VEK's); E_EVIDENCE_COLLATERAL (CRL signature); E_EVIDENCE_REVOKED.
 */
export function verifySevSnpReport(
  input: Uint8Array | SevSnpReport,
  opts: VerifySevSnpOptions,
): VerifiedSevSnpReport {
  if (typeof opts.now !== 'number' || !Number.isFinite(opts.now))
    throw new FirnError('E_INVALID_INPUT', 'now must be unix seconds');
  const report = input instanceof Uint8Array ? parseSevSnpReport(input) : input;
  if (report.signingKey === 'none')
    throw new FirnError('E_EVIDENCE_SIGNATURE', 'the report is unsigned (SIGNING_KEY is none)');
  // The VEK comes first; certificates after it (a VEK file with its chain appended) join the chain.
  const vekDers = certificatesFrom(opts.vek, report.signingKey.toUpperCase(), 4);
  const vek = parseAmdCertificate(vekDers[0]!, report.signingKey.toUpperCase());
  const expectCn = report.signingKey === 'vcek' ? 'SEV-VCEK' : 'SEV-VLEK';
  if (vek.commonName !== expectCn)
    throw chainErr(
      `the report is signed by a ${report.signingKey.toUpperCase()} but the certificate given is ${vek.commonName || 'unnamed'}`,
    );
  if (!isP384Key(vek.publicKey)) throw chainErr(`the ${expectCn} key is not an EC P-384 key`);

  const roots =
    opts.roots === undefined
      ? defaultRoots()
      : opts.roots.flatMap((r, i) =>
          certificatesFrom(r, `root ${i}`, 4).map((d) => parseAmdCertificate(d, `root ${i}`)),
        );
  if (roots.length === 0) throw chainErr('no pinned ARK is given');
  const intermediates = [
    ...vekDers.slice(1).map((d, i) => parseAmdCertificate(d, `certificate ${i + 1} after the ${expectCn}`)),
    ...(opts.chain === undefined
      ? defaultIntermediates()
      : certificatesFrom(opts.chain, 'certificate chain', 4).map((d, i) =>
          parseAmdCertificate(d, `chain certificate ${i}`),
        )),
  ];
  const ask = intermediates.find((c) => sameBytes(c.subject, vek.issuer) && !sameBytes(c.issuer, c.subject));
  if (ask === undefined) throw chainErr(`no certificate in the chain issued the ${expectCn}`);
  const ark = roots.find((r) => sameBytes(r.subject, ask.issuer));
  if (ark === undefined) throw chainErr(`${ask.commonName} does not chain to a pinned ARK`);
  const product = productOfArk(ark);
  if (product === undefined) throw chainErr(`pinned root ${ark.commonName || 'unnamed'} is not an AMD ARK`);
  checkIssuedBy(ark, ark, opts.now, ark.commonName);
  checkIssuedBy(ask, ark, opts.now, ask.commonName);
  checkIssuedBy(vek, ask, opts.now, expectCn);
  const expectIssuer = report.signingKey === 'vcek' ? `SEV-${product}` : `SEV-VLEK-${product}`;
  if (ask.commonName !== expectIssuer)
    throw chainErr(`a ${expectCn} must be issued by ${expectIssuer}, not ${ask.commonName}`);

  if (report.cpuid !== undefined) {
    const p = productOfCpuid(report.cpuid.family, report.cpuid.model);
    if (p !== undefined && p !== product)
      throw chainErr(`the report's CPUID names ${p} but its ${expectCn} chains to ARK-${product}`);
  }
  const ext = parseVekExtensions(vek, product);
  // A VCEK names a chip and no cloud provider; a VLEK names a provider and no chip (go-sev-guest's kds checks).
  if (
    report.signingKey === 'vcek' ? ext.cspId !== undefined : ext.cspId === undefined || ext.hwId !== undefined
  )
    throw chainErr(`the ${expectCn} has the extensions of the other key kind (hwID / csp_id)`);
  if (!ext.productName.startsWith(product))
    throw chainErr(`the ${expectCn} is for product ${ext.productName}, not ${product}`);

  if (!reportSignatureHolds(report, vek))
    throw new FirnError(
      'E_EVIDENCE_SIGNATURE',
      `the report's signature does not verify with the ${expectCn}`,
    );

  const reportedTcb = decodeTcb(report.reportedTcbBytes, product);
  const mismatch: string[] = [];
  for (const k of ['bootloader', 'tee', 'snp', 'microcode', 'fmc'] as const)
    if (ext[k] !== reportedTcb[k]) mismatch.push(`${k} ${ext[k] ?? '-'} != ${reportedTcb[k] ?? '-'}`);
  if (mismatch.length > 0)
    throw new FirnError(
      'E_EVIDENCE_TCB',
      `the ${expectCn} certifies another TCB than the report's REPORTED_TCB (${mismatch.join(', ')}): fetch the ${expectCn} for this TCB`,
    );
  if (report.signingKey === 'vcek' && !report.maskChipId) {
    if (ext.hwId === undefined) throw chainErr('the VCEK has no hwID extension');
    if (!sameBytes(ext.hwId, report.chipId.subarray(0, ext.hwId.length)))
      throw new FirnError('E_EVIDENCE_TCB', "the VCEK was issued for another chip than the report's CHIP_ID");
  }

  // go-sev-guest's validateTcb relations that hold for any genuine report: the VEK's (= reported)
  // TCB is not above CURRENT_TCB (a VEK can only be derived down from the running firmware), and
  // COMMITTED_TCB is not above CURRENT_TCB (provisional firmware may run above the committed one).
  const currentTcb = decodeTcb(report.currentTcbBytes, product);
  const committedTcb = decodeTcb(report.committedTcbBytes, product);
  for (const [what, t] of [
    ['REPORTED_TCB', reportedTcb],
    ['COMMITTED_TCB', committedTcb],
  ] as const) {
    const over = (['fmc', 'bootloader', 'tee', 'snp', 'microcode'] as const).filter(
      (k) => (t[k] ?? 0) > (currentTcb[k] ?? 0),
    );
    if (over.length > 0)
      throw new FirnError(
        'E_EVIDENCE_TCB',
        `the report's ${what} is above its CURRENT_TCB (${over.map((k) => `${k} ${t[k]} > ${currentTcb[k]}`).join(', ')})`,
      );
  }

  const out: VerifiedSevSnpReport = {
    report,
    product,
    signingKey: report.signingKey,
    reportedTcb,
    currentTcb,
    committedTcb,
    launchTcb: decodeTcb(report.launchTcbBytes, product),
    vek: ext,
    vekNotAfter: Math.min(vek.notAfter, ask.notAfter, ark.notAfter),
  };
  if (opts.crl !== undefined) {
    const crl: AmdCrl = parseAmdCrl(opts.crl);
    checkCrlSignedBy(crl, ark);
    if (opts.now < crl.thisUpdate)
      throw new FirnError('E_EVIDENCE_COLLATERAL', 'the CRL is not yet valid at the verification time');
    for (const [c, what] of [
      [ask, ask.commonName],
      [vek, expectCn],
    ] as const)
      if (crl.revoked.has(c.serial))
        throw new FirnError(
          'E_EVIDENCE_REVOKED',
          `${what} (serial ${c.serial}) is revoked by ${ark.commonName}'s CRL`,
        );
    out.crl = { thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate };
  }
  return out;
}
