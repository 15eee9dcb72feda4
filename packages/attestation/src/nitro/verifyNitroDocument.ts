import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { FirnError, measurementDigest, utf8 } from '@firn/core';
import { encode } from 'cborg';
import { parseCert, publicKeyOf, verifyCertChain } from '../nvidia/certChain.ts';
import { markVerified, type VerifiedEvidence } from '../types.ts';
import { AWS_NITRO_ROOT_G1_DER } from './awsNitroRoot.ts';
import type { NitroDocument } from './parseNitroDocument.ts';

/** How far a document's timestamp may lie after the verification time (clock skew), seconds. */
export const NITRO_MAX_CLOCK_SKEW_SECONDS = 300;

export interface NitroVerifyOptions {
  /** Verification time, unix seconds. */
  now: number;
  /** Trust anchors (DER or PEM); default: the pinned AWS Nitro Enclaves Root G1. */
  roots?: readonly Uint8Array[];
}

/** Where the 64 bytes of report data were read from (see reportDataOf). */
export type NitroReportDataSource = 'user_data' | 'nonce' | 'none';

const ZERO_48 = new Uint8Array(48);
const isZero = (b: Uint8Array) => b.every((x) => x === 0);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * The report data firn binds (core.computeReportData: SHA-512 over the enclave address, KEM key,
 * nonce, GPU digest and operator) travels in the document's user_data, which the enclave hands to the NSM
 * (decision 1000). user_data of exactly 64 bytes is the report data; else a nonce of exactly 64
 * bytes is; else there is none and 64 zero bytes are reported, which no SHA-512 output equals, so
 * the policy's binding check refuses it.
 */
export function reportDataOf(doc: Pick<NitroDocument, 'userData' | 'nonce'>): {
  reportData: Uint8Array;
  source: NitroReportDataSource;
} {
  if (doc.userData !== null && doc.userData.length === 64)
    return { reportData: new Uint8Array(doc.userData), source: 'user_data' };
  if (doc.nonce !== null && doc.nonce.length === 64)
    return { reportData: new Uint8Array(doc.nonce), source: 'nonce' };
  return { reportData: new Uint8Array(64), source: 'none' };
}

/** The parent EC2 instance id a module id names ("i-0abc…-enc0123…"), or undefined. */
export function parentInstanceIdOf(moduleId: string): string | undefined {
  return /^(i-[0-9a-f]{8,32})-enc[0-9a-f]{1,32}$/.exec(moduleId)?.[1];
}

/**
 * What a Nitro document says about identity, unverified: the measurement registers in the order
 * the measurement digest takes them (PCR0, PCR1, PCR2, PCR8; an absent PCR8 as 48 zero bytes) and
 * the platform id (the parent EC2 instance id from module_id, else the module id itself). The
 * enclave uses it on its own document to learn who it is; verifiers get it from verifyNitroDocument.
 * Throws E_EVIDENCE_MALFORMED when the platform id would exceed 64 bytes.
 */
export function nitroIdentityOf(doc: Pick<NitroDocument, 'pcrs' | 'moduleId'>): {
  registers: Uint8Array[];
  platformId: Uint8Array;
  parentInstanceId: string | undefined;
} {
  const pcr = (i: number) => doc.pcrs.get(i) ?? ZERO_48;
  const parentInstanceId = parentInstanceIdOf(doc.moduleId);
  const platformId = utf8(parentInstanceId ?? doc.moduleId);
  if (platformId.length > 64)
    throw new FirnError('E_EVIDENCE_MALFORMED', 'Nitro module_id is too long to name a platform');
  // The enclave image (PCR0), kernel and bootstrap (PCR1), application (PCR2) and the image
  // signing certificate (PCR8, zero when unsigned): the code, not the instance or IAM role.
  return { registers: [pcr(0), pcr(1), pcr(2), pcr(8)], platformId, parentInstanceId };
}

/** COSE Sig_structure for COSE_Sign1 with empty external AAD (RFC 9052 §4.4). */
export function nitroSigStructure(doc: Pick<NitroDocument, 'protectedHeader' | 'payload'>): Uint8Array {
  return encode(['Signature1', doc.protectedHeader, new Uint8Array(0), doc.payload]);
}

function es384Verify(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return cryptoVerify('sha384', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/**
 * Verify a parsed Nitro attestation document at `opts.now` (unix seconds), as AWS's "Verifying the
 * root of trust" prescribes: the leaf certificate is a P-384 end-entity certificate; leaf,
 * cabundle and root form a chain of valid signatures that ends at a pinned root (default AWS Nitro
 * Enclaves Root G1); every certificate is within its validity at `now`; the COSE_Sign1 ES384
 * signature over the Sig_structure verifies with the leaf key; the document's timestamp is not
 * after `now` (beyond NITRO_MAX_CLOCK_SKEW_SECONDS) and lies within the leaf's validity.
 *
 * It proves the document came from the Nitro Security Module of an enclave running the image the
 * PCRs name. It does not prove the image is one you trust, that it is not a debug enclave (both
 * are facts for the policy), that the document is recent beyond the leaf's ~3 h validity (the
 * policy's nitro.maxDocumentAgeSeconds), nor revocation (AWS publishes CRLs only for
 * intermediates, which are short-lived; not checked). Errors: E_EVIDENCE_CHAIN (untrusted root,
 * broken chain), E_EVIDENCE_EXPIRED (a certificate outside its validity, a timestamp outside the
 * allowed window), E_EVIDENCE_SIGNATURE (COSE signature), E_EVIDENCE_MALFORMED (certificates
 * that do not decode, a leaf that is not a P-384 end-entity certificate).
 */
export function verifyNitroDocument(doc: NitroDocument, opts: NitroVerifyOptions): VerifiedEvidence {
  const { now } = opts;
  if (!Number.isSafeInteger(now) || now < 0)
    throw new FirnError('E_INVALID_INPUT', 'verification time must be unix seconds');

  const leaf = parseCert(doc.certificate);
  const leafKey = publicKeyOf(leaf);
  if (leafKey.asymmetricKeyType !== 'ec' || leafKey.asymmetricKeyDetails?.namedCurve !== 'secp384r1')
    throw new FirnError('E_EVIDENCE_MALFORMED', 'Nitro signing certificate key is not ECDSA P-384');
  if (leaf.ca) throw new FirnError('E_EVIDENCE_MALFORMED', 'Nitro signing certificate is a CA certificate');

  // Leaf first, then the cabundle from the leaf's issuer up to the root (cabundle is root first).
  const chain = [doc.certificate, ...[...doc.cabundle].reverse()];
  const roots = opts.roots ?? [AWS_NITRO_ROOT_G1_DER];
  const res = verifyCertChain(chain, roots, now);
  if (res.anchorIndex === undefined)
    throw new FirnError(
      'E_EVIDENCE_CHAIN',
      `Nitro certificate chain does not verify to a pinned root: ${res.problems.join('; ')}`,
    );
  if (!res.valid) {
    const onlyTime = res.problems.every((p) => p.endsWith('has expired') || p.endsWith('is not yet valid'));
    throw new FirnError(
      onlyTime ? 'E_EVIDENCE_EXPIRED' : 'E_EVIDENCE_CHAIN',
      `Nitro certificate chain at ${new Date(now * 1000).toISOString()}: ${res.problems.join('; ')}`,
      { details: { notBefore: res.notBefore, notAfter: res.notAfter } },
    );
  }

  if (!es384Verify(leafKey, nitroSigStructure(doc), doc.signature))
    throw new FirnError('E_EVIDENCE_SIGNATURE', 'Nitro attestation document signature does not verify');

  const issuedAt = Math.floor(doc.timestampMs / 1000);
  if (issuedAt > now + NITRO_MAX_CLOCK_SKEW_SECONDS)
    throw new FirnError(
      'E_EVIDENCE_EXPIRED',
      `Nitro attestation document is dated ${new Date(doc.timestampMs).toISOString()}, after the verification time`,
    );
  const leafFrom = Math.floor(Date.parse(leaf.validFrom) / 1000);
  const leafTo = Math.floor(Date.parse(leaf.validTo) / 1000);
  if (issuedAt < leafFrom - NITRO_MAX_CLOCK_SKEW_SECONDS || issuedAt > leafTo)
    throw new FirnError(
      'E_EVIDENCE_EXPIRED',
      "Nitro attestation document's timestamp is outside its signing certificate's validity",
    );

  const pcr = (i: number) => doc.pcrs.get(i) ?? ZERO_48;
  const measurements: Record<string, string> = {};
  for (const [i, v] of [...doc.pcrs].sort((a, b) => a[0] - b[0])) measurements[`pcr${i}`] = hex(v);
  const { registers, platformId, parentInstanceId } = nitroIdentityOf(doc);
  const { reportData, source } = reportDataOf(doc);

  return markVerified({
    teeType: 'nitro',
    measurement: measurementDigest('nitro', registers),
    measurements,
    platformId,
    reportData,
    // AWS: an enclave started in debug mode reports PCR0..2 as all zeros.
    debug: isZero(pcr(0)) && isZero(pcr(1)) && isZero(pcr(2)),
    // Nitro has no TCB levels: AWS certifies the hypervisor and NSM through the chain itself.
    tcbStatus: 'UpToDate',
    advisoryIds: [],
    extra: {
      moduleId: doc.moduleId,
      parentInstanceId: parentInstanceId ?? null,
      timestampMs: doc.timestampMs,
      issuedAt,
      digest: doc.digest,
      userData: doc.userData === null ? null : hex(doc.userData),
      nonce: doc.nonce === null ? null : hex(doc.nonce),
      publicKey: doc.publicKey === null ? null : hex(doc.publicKey),
      reportDataSource: source,
      certificateNotAfter: res.notAfter,
      leafSubject: leaf.subject.replace(/\n/g, ', '),
      measurementRegisters: ['pcr0', 'pcr1', 'pcr2', 'pcr8'],
    },
  });
}
