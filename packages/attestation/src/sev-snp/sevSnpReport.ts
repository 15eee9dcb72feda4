import { FirnError, TooLargeError } from '@firn/core';

/**
 * AMD SEV-SNP ATTESTATION_REPORT, as the AMD SEV Secure Nested Paging Firmware ABI Specification
 * (publication 56860, table "ATTESTATION_REPORT Structure") lays it out: versions 2 and later are
 * 1184 bytes (0x4A0), the signature covers bytes 0x000..0x29F, and the signature (r and s, 72
 * bytes each, little-endian) starts at 0x2A0.
 */
export const SEV_SNP_REPORT_BYTES = 0x4a0;
/** End of the signed part of the report (exclusive). */
export const SEV_SNP_SIGNED_BYTES = 0x2a0;
/** SIGNATURE_ALGO 1: ECDSA P-384 with SHA-384 (ABI spec, "Signature Formats"). */
export const SEV_SNP_SIG_ALGO_ECDSA_P384_SHA384 = 1;
/** The lowest report version with the SEV-SNP layout (version 1 was never SNP). */
export const SEV_SNP_MIN_REPORT_VERSION = 2;
/** Versions newer than this keep the stable layout; only the fields known up to it are decoded. */
export const SEV_SNP_MAX_KNOWN_REPORT_VERSION = 5;

/** AMD EPYC generations with their own ARK (KDS product names). */
export type SevSnpProduct = 'Milan' | 'Genoa' | 'Turin';
export const SEV_SNP_PRODUCTS: readonly SevSnpProduct[] = ['Milan', 'Genoa', 'Turin'];

/**
 * One TCB_VERSION, decoded per product: Milan and Genoa put BOOT_LOADER, TEE, SNP, MICROCODE at
 * bytes 0, 1, 6, 7; Turin adds FMC at byte 0 and moves BOOT_LOADER, TEE, SNP to 1, 2, 3.
 */
export interface SevSnpTcb {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  /** Turin and later only. */
  fmc?: number;
  /** The raw 8 bytes, hex (little-endian as in the report). */
  raw: string;
}

/** The guest policy (ABI spec, "Guest Policy Structure"): the launch-time settings the report carries. */
export interface SevSnpGuestPolicy {
  abiMinor: number;
  abiMajor: number;
  /** Bit 16: SMT may be enabled on the host. */
  smtAllowed: boolean;
  /** Bit 18: a migration agent may be associated with the guest. */
  migrateMaAllowed: boolean;
  /** Bit 19: the host may debug (decrypt, read and write) the guest's memory. */
  debugAllowed: boolean;
  /** Bit 20: the guest may run only on a single socket. */
  singleSocketOnly: boolean;
  /** Bit 21: CXL may be populated with guest memory. */
  cxlAllowed: boolean;
  /** Bit 22: AES-256-XTS memory encryption is required. */
  memAes256Xts: boolean;
  /** Bit 23: running with RAPL enabled is refused. */
  raplDisabled: boolean;
  /** Bit 24: ciphertext hiding must be enabled. */
  ciphertextHiding: boolean;
  /** Bit 25: the guest may not use page swap commands. */
  pageSwapDisabled: boolean;
  /** The whole 64-bit field, hex (big-endian digits). */
  raw: string;
}

/** PLATFORM_INFO (ABI spec): how the platform was configured when the report was made. */
export interface SevSnpPlatformInfo {
  smtEnabled: boolean;
  tsmeEnabled: boolean;
  eccEnabled: boolean;
  raplDisabled: boolean;
  ciphertextHidingEnabled: boolean;
  aliasCheckComplete: boolean;
  raw: string;
}

/** Which key signed the report (flags bits 4:2). */
export type SevSnpSigningKey = 'vcek' | 'vlek' | 'none';

/**
 * The report's fields. Nothing here is trusted until verifySevSnpReport has checked the signature
 * and the chain. Byte fields are views into the report; hex strings are lowercase without 0x.
 */
export interface SevSnpReport {
  /** The whole report (1184 bytes). */
  bytes: Uint8Array;
  version: number;
  guestSvn: number;
  policy: SevSnpGuestPolicy;
  /** The 8 policy bytes as in the report (little-endian). */
  policyBytes: Uint8Array;
  familyId: Uint8Array;
  imageId: Uint8Array;
  vmpl: number;
  signatureAlgo: number;
  /** CURRENT_TCB, COMMITTED_TCB, REPORTED_TCB and LAUNCH_TCB as raw 8-byte fields (decode per product). */
  currentTcbBytes: Uint8Array;
  reportedTcbBytes: Uint8Array;
  committedTcbBytes: Uint8Array;
  launchTcbBytes: Uint8Array;
  platformInfo: SevSnpPlatformInfo;
  authorKeyEn: boolean;
  /** MASK_CHIP_ID: the chip id is zero in this report. */
  maskChipId: boolean;
  signingKey: SevSnpSigningKey;
  reportData: Uint8Array;
  /** MEASUREMENT: the launch digest (SHA-384) of the guest's initial memory and VMSAs. */
  measurement: Uint8Array;
  /** HOST_DATA: 32 bytes the host supplied at launch. */
  hostData: Uint8Array;
  idKeyDigest: Uint8Array;
  authorKeyDigest: Uint8Array;
  reportId: Uint8Array;
  reportIdMa: Uint8Array;
  /** Version 3+: CPUID family, model and stepping of the chip; undefined before. */
  cpuid?: { family: number; model: number; stepping: number };
  chipId: Uint8Array;
  currentVersion: { major: number; minor: number; build: number };
  committedVersion: { major: number; minor: number; build: number };
  /** Version 5+: mitigation vectors. */
  launchMitVector?: string;
  currentMitVector?: string;
  /** The signed bytes (0x000..0x29F). */
  signed: Uint8Array;
  /** r and s as big-endian 48-byte integers (P-384), converted from the report's little-endian. */
  signatureR: Uint8Array;
  signatureS: Uint8Array;
}

function malformed(message: string, offset?: number): FirnError {
  return new FirnError(
    'E_EVIDENCE_MALFORMED',
    `SEV-SNP report: ${message}`,
    offset === undefined ? {} : { details: { offset } },
  );
}

const u32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset + o, 4).getUint32(0, true);
const u64hex = (b: Uint8Array, o: number) =>
  Buffer.from(b.subarray(o, o + 8))
    .reverse()
    .toString('hex');
const isZero = (b: Uint8Array) => b.every((x) => x === 0);

/** The 64-bit guest policy from its 8 little-endian bytes. */
export function decodeGuestPolicy(b: Uint8Array): SevSnpGuestPolicy {
  if (b.length !== 8) throw malformed('policy must be 8 bytes');
  const lo = u32(b, 0);
  const bit = (n: number) => ((lo >>> n) & 1) === 1;
  return {
    abiMinor: b[0]!,
    abiMajor: b[1]!,
    smtAllowed: bit(16),
    migrateMaAllowed: bit(18),
    debugAllowed: bit(19),
    singleSocketOnly: bit(20),
    cxlAllowed: bit(21),
    memAes256Xts: bit(22),
    raplDisabled: bit(23),
    ciphertextHiding: bit(24),
    pageSwapDisabled: bit(25),
    raw: u64hex(b, 0),
  };
}

/** A TCB_VERSION's 8 little-endian bytes, decoded with the product's layout. */
export function decodeTcb(b: Uint8Array, product: SevSnpProduct): SevSnpTcb {
  if (b.length !== 8) throw malformed('TCB_VERSION must be 8 bytes');
  const raw = Buffer.from(b).toString('hex');
  if (product === 'Turin')
    return { fmc: b[0]!, bootloader: b[1]!, tee: b[2]!, snp: b[3]!, microcode: b[7]!, raw };
  return { bootloader: b[0]!, tee: b[1]!, snp: b[6]!, microcode: b[7]!, raw };
}

/**
 * The product a report's CPUID names (version 3+): family 19h models 00h-0Fh Milan, 10h-1Fh and
 * A0h-AFh Genoa (with Bergamo and Siena, which share Genoa's ARK); family 1Ah models 00h-11h Turin.
 * Undefined for an unknown family or model (the chain then decides alone).
 */
export function productOfCpuid(family: number, model: number): SevSnpProduct | undefined {
  if (family === 0x19) {
    if (model <= 0x0f) return 'Milan';
    if ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)) return 'Genoa';
    return undefined;
  }
  if (family === 0x1a && model <= 0x11) return 'Turin';
  return undefined;
}

/** Little-endian 72-byte signature component to a big-endian 48-byte P-384 scalar. */
function scalarOf(le: Uint8Array, what: string, offset: number): Uint8Array {
  // The ABI zero-extends 48-byte P-384 scalars to 72 bytes; anything above byte 48 is malformed.
  if (!isZero(le.subarray(48))) throw malformed(`signature ${what} has bytes above the P-384 size`, offset);
  return Uint8Array.from(le.subarray(0, 48)).reverse();
}

/**
 * Parse an ATTESTATION_REPORT (structure and sizes only; no signature is trusted). Accepts
 * exactly 1184 bytes of version 2 or later with SIGNATURE_ALGO 1.
 * Errors: E_TOO_LARGE (over 1184 bytes), E_EVIDENCE_MALFORMED (short, version 0/1, reserved
 * signing-key value, signature scalars over 48 bytes), E_UNSUPPORTED (another signature algorithm).
 */
export function parseSevSnpReport(bytes: Uint8Array): SevSnpReport {
  if (!(bytes instanceof Uint8Array)) throw malformed('must be bytes');
  if (bytes.length > SEV_SNP_REPORT_BYTES)
    throw new TooLargeError('SEV-SNP attestation report', bytes.length, SEV_SNP_REPORT_BYTES);
  if (bytes.length !== SEV_SNP_REPORT_BYTES)
    throw malformed(`is ${bytes.length} bytes, expected ${SEV_SNP_REPORT_BYTES}`);
  const b = new Uint8Array(bytes);
  const version = u32(b, 0x00);
  if (version < SEV_SNP_MIN_REPORT_VERSION)
    throw malformed(`version ${version} is not an SEV-SNP report (2 or later)`, 0);
  const signatureAlgo = u32(b, 0x34);
  if (signatureAlgo !== SEV_SNP_SIG_ALGO_ECDSA_P384_SHA384)
    throw new FirnError(
      'E_UNSUPPORTED',
      `SEV-SNP report: signature algorithm ${signatureAlgo} is not ECDSA P-384`,
    );
  const flags = u32(b, 0x48);
  const keySel = (flags >>> 2) & 0x7;
  const signingKey: SevSnpSigningKey | undefined =
    keySel === 0 ? 'vcek' : keySel === 1 ? 'vlek' : keySel === 7 ? 'none' : undefined;
  if (signingKey === undefined) throw malformed(`signing key selector ${keySel} is reserved`, 0x48);
  // The rest of the 512-byte signature field after r and s is reserved and written as zero by the
  // firmware; it is outside the signed bytes, so a non-zero byte there is refused rather than
  // silently ignored (every byte of an accepted report is then either signed or zero).
  if (!isZero(b.subarray(0x2a0 + 144, SEV_SNP_REPORT_BYTES)))
    throw malformed('reserved bytes after the signature are not zero', 0x2a0 + 144);
  const pi = b.subarray(0x40, 0x48);
  const piLo = u32(pi, 0);
  const view = (o: number, n: number) => b.subarray(o, o + n);
  const ver = (o: number) => ({ build: b[o]!, minor: b[o + 1]!, major: b[o + 2]! });
  const policyBytes = view(0x08, 8);
  const report: SevSnpReport = {
    bytes: b,
    version,
    guestSvn: u32(b, 0x04),
    policy: decodeGuestPolicy(policyBytes),
    policyBytes,
    familyId: view(0x10, 16),
    imageId: view(0x20, 16),
    vmpl: u32(b, 0x30),
    signatureAlgo,
    currentTcbBytes: view(0x38, 8),
    platformInfo: {
      smtEnabled: (piLo & 1) !== 0,
      tsmeEnabled: (piLo & 2) !== 0,
      eccEnabled: (piLo & 4) !== 0,
      raplDisabled: (piLo & 8) !== 0,
      ciphertextHidingEnabled: (piLo & 16) !== 0,
      aliasCheckComplete: (piLo & 32) !== 0,
      raw: u64hex(pi, 0),
    },
    authorKeyEn: (flags & 1) !== 0,
    maskChipId: (flags & 2) !== 0,
    signingKey,
    reportData: view(0x50, 64),
    measurement: view(0x90, 48),
    hostData: view(0xc0, 32),
    idKeyDigest: view(0xe0, 48),
    authorKeyDigest: view(0x110, 48),
    reportId: view(0x140, 32),
    reportIdMa: view(0x160, 32),
    reportedTcbBytes: view(0x180, 8),
    chipId: view(0x1a0, 64),
    committedTcbBytes: view(0x1e0, 8),
    currentVersion: ver(0x1e8),
    committedVersion: ver(0x1ec),
    launchTcbBytes: view(0x1f0, 8),
    signed: view(0, SEV_SNP_SIGNED_BYTES),
    signatureR: scalarOf(view(0x2a0, 72), 'r', 0x2a0),
    signatureS: scalarOf(view(0x2e8, 72), 's', 0x2e8),
  };
  if (version >= 3) report.cpuid = { family: b[0x188]!, model: b[0x189]!, stepping: b[0x18a]! };
  if (version >= 5) {
    report.launchMitVector = u64hex(b, 0x1f8);
    report.currentMitVector = u64hex(b, 0x200);
  }
  return report;
}
