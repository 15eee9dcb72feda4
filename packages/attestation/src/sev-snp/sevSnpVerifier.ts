import { bytesToHex, FirnError, measurementDigest } from '@firn/core';
import { markVerified, type EvidenceVerifier, type VerifiedEvidence, type VerifyContext } from '../types.ts';
import {
  parseSevSnpCollateral,
  type SevSnpCollateral,
  type SevSnpCollateralProvider,
} from './sevSnpCollateral.ts';
import { sevSnpCollateralFor } from './sevSnpCollateralSource.ts';

export {
  parseSevSnpCollateral,
  type SevSnpCollateral,
  type SevSnpCollateralProvider,
} from './sevSnpCollateral.ts';
import { parseSevSnpReport, type SevSnpReport } from './sevSnpReport.ts';
import { verifySevSnpReport } from './verifySevSnpReport.ts';

/**
 * SEV-SNP collateral as it travels in an evidence bundle (JSON): the VEK that signed the report
 * and optionally its issuer chain and the product's CRL. A node fills it from the extended report's
 * certificate table (configfs-tsm auxblob) or the KDS; a verifier may fetch it from the KDS itself.
 */
/**
 * The registers of an SEV-SNP guest reduced to firn's 32-byte measurement: MEASUREMENT (the launch
 * digest), HOST_DATA and the 8-byte guest POLICY, in that order (decision 1020): the same image
 * launched with another host data or policy (e.g. debug allowed) is another identity.
 */
export function sevSnpMeasurementRegisters(r: SevSnpReport): Uint8Array[] {
  return [r.measurement, r.hostData, r.policyBytes];
}

/**
 * What a guest learns about itself from one of its own reports (as dcapSelfIdentity for SGX/TDX):
 * its measurement registers and its chip id. Nothing is verified: the guest uses this only to name
 * itself; verifiers derive the same values from verified reports. Errors: parse errors, and
 * E_UNSUPPORTED when the chip id is masked (the platform cannot be named).
 */
export function sevSnpSelfIdentity(report: Uint8Array): {
  teeType: 'sev-snp';
  registers: Uint8Array[];
  platformId: Uint8Array;
} {
  const r = parseSevSnpReport(report);
  if (r.maskChipId || r.chipId.every((x) => x === 0))
    throw new FirnError('E_UNSUPPORTED', 'the report masks its chip id, so the platform cannot be named');
  return {
    teeType: 'sev-snp',
    registers: sevSnpMeasurementRegisters(r),
    platformId: new Uint8Array(r.chipId),
  };
}

const hex = (b: Uint8Array) => bytesToHex(b).slice(2);

/**
 * Verify an SEV-SNP report against its collateral and return firn's facts. Proves what
 * verifySevSnpReport proves; the facts carry the guest policy bits, VMPL, TCBs, CPUID and chip id
 * for evaluateSevSnp. AMD publishes no TCB status, so the verifier cannot judge the TCB's age:
 * tcbStatus here only means "certified by a VEK for exactly this TCB" ('UpToDate'), and
 * evaluateEvidence replaces it with 'OutOfDate' or 'UpToDate' against the policy's minimum for
 * the report's silicon line (SevSnpPolicy.minTcbByLine, decision 1765).
 */
export function sevSnpFacts(
  report: SevSnpReport,
  collateral: SevSnpCollateral,
  ctx: VerifyContext,
): VerifiedEvidence {
  const v = verifySevSnpReport(report, {
    now: ctx.now,
    vek: collateral.vek,
    ...(collateral.chain === undefined ? {} : { chain: collateral.chain }),
    ...(ctx.roots === undefined ? {} : { roots: ctx.roots }),
    ...(collateral.crl === undefined ? {} : { crl: new Uint8Array(Buffer.from(collateral.crl, 'base64')) }),
  });
  const r = v.report;
  const facts: Parameters<typeof markVerified>[0] = {
    teeType: 'sev-snp',
    measurement: measurementDigest('sev-snp', sevSnpMeasurementRegisters(r)),
    measurements: {
      measurement: hex(r.measurement),
      hostData: hex(r.hostData),
      policy: r.policy.raw,
      familyId: hex(r.familyId),
      imageId: hex(r.imageId),
      idKeyDigest: hex(r.idKeyDigest),
      authorKeyDigest: hex(r.authorKeyDigest),
      guestSvn: String(r.guestSvn),
      vmpl: String(r.vmpl),
    },
    platformId: new Uint8Array(r.chipId),
    reportData: new Uint8Array(r.reportData),
    debug: r.policy.debugAllowed,
    tcbStatus: 'UpToDate',
    advisoryIds: [],
    extra: {
      reportVersion: r.version,
      product: v.product,
      signingKey: v.signingKey,
      vekProductName: v.vek.productName,
      ...(v.vek.cspId === undefined ? {} : { cspId: v.vek.cspId }),
      chipId: hex(r.chipId),
      // A masked or all-zero chip id (VLEK-signed reports carry zeros) names no platform.
      chipIdMasked: r.maskChipId || r.chipId.every((x) => x === 0),
      vmpl: r.vmpl,
      guestPolicy: r.policy,
      platformInfo: r.platformInfo,
      reportedTcb: v.reportedTcb,
      currentTcb: v.currentTcb,
      committedTcb: v.committedTcb,
      launchTcb: v.launchTcb,
      firmware: r.currentVersion,
      ...(r.cpuid === undefined ? {} : { cpuid: r.cpuid }),
      vekNotAfter: v.vekNotAfter,
      crlChecked: v.crl !== undefined,
    },
  };
  if (v.crl !== undefined) {
    facts.collateralIssuedAt = v.crl.thisUpdate;
    facts.collateralNextUpdate = v.crl.nextUpdate;
  }
  return markVerified(facts);
}

export interface SevSnpVerifierOptions {
  /** Where to get the VEK (and CRL) when the evidence carries no collateral, e.g. createKdsClient(). */
  kds?: SevSnpCollateralProvider;
}

/**
 * The SEV-SNP EvidenceVerifier: the evidence ("quote") is the 1184-byte ATTESTATION_REPORT, the
 * collateral is SevSnpCollateral. Without collateral and with a `kds` provider, the VEK is fetched.
 */
export function createSevSnpVerifier(opts: SevSnpVerifierOptions = {}): EvidenceVerifier<SevSnpReport> {
  return {
    teeType: 'sev-snp',
    parse: parseSevSnpReport,
    async verify(report, ctx) {
      // With a KDS, the verifier's own collateral (VCEK, chain and CRL) wins wherever the KDS can
      // serve it: attached collateral only fills what it cannot (a VLEK, a masked chip id, a v2
      // report of no configured product), so a host cannot leave out the CRL that revokes its VCEK
      // by attaching the VCEK alone (as decision 0940 for DCAP). A KDS outage is no verdict: it throws.
      if (opts.kds !== undefined) {
        const kds = opts.kds;
        const collateral = await sevSnpCollateralFor(report, ctx.now, {
          provider: kds,
          ...(ctx.collateral === undefined ? {} : { attached: ctx.collateral }),
        });
        try {
          return sevSnpFacts(report, parseSevSnpCollateral(collateral), ctx);
        } catch (e) {
          // A mirror's answer that does not verify is not kept until its (forged) notAfter.
          await kds.forget?.(report);
          throw e;
        }
      }
      return sevSnpFacts(report, parseSevSnpCollateral(ctx.collateral), ctx);
    },
  };
}

/** The default SEV-SNP verifier (offline: the VEK must come with the evidence). */
export const sevSnpVerifier: EvidenceVerifier<SevSnpReport> = createSevSnpVerifier();
