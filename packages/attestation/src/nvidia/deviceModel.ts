import { parseCert } from './certChain.ts';

/** What kind of NVIDIA device a certificate chain certifies. */
export type NvDeviceKind = 'gpu' | 'nvswitch' | 'unknown';

/** The device model a certificate chain names (decision 1767). */
export interface NvDeviceModel {
  /** GPU, NVSwitch, or 'unknown' when the chain names no model firn knows (fail closed). */
  kind: NvDeviceKind;
  /** HOPPER, BLACKWELL (GPUs) or LS10 (NVSwitch); 'UNKNOWN' with kind 'unknown'. */
  arch: string;
  /**
   * The common name of the device identity ("BROM") certificate, the chain's second certificate,
   * e.g. "GH100 A01 GSP BROM": what NVIDIA's verifiers report as the `hwmodel` claim. Null when
   * the chain has no second certificate or it has not exactly one common name.
   */
  hwmodel: string | null;
}

/**
 * Device identity certificate common names by chip, as NVIDIA provisions them: GPUs' GSP BROM
 * ("GH100 A01 GSP BROM", "GB100 A01 GSP BROM"), NVSwitches' FSP BROM ("LS_10 A01 FSP BROM").
 */
const MODELS: readonly { re: RegExp; kind: 'gpu' | 'nvswitch'; arch: string }[] = [
  { re: /^GH100 A\d\d GSP BROM$/, kind: 'gpu', arch: 'HOPPER' },
  { re: /^GB100 A\d\d GSP BROM$/, kind: 'gpu', arch: 'BLACKWELL' },
  { re: /^LS_10 A\d\d FSP BROM$/, kind: 'nvswitch', arch: 'LS10' },
];

function commonName(subject: string): string | null {
  const cns = subject.split('\n').filter((l) => l.startsWith('CN='));
  return cns.length === 1 ? cns[0]!.slice(3) : null;
}

/**
 * The device model a leaf-first device certificate chain names, read from the subject common name
 * of its device identity certificate (chainDer[1]), as NVIDIA's GPU and NVSwitch verifiers read
 * `hwmodel`. This is parsing only: the name is NVIDIA's word only once the chain verifies to
 * NVIDIA's root (verifyGpuEvidence reports both; evaluateGpu refuses an invalid chain). A model
 * this table does not list is kind 'unknown' (refused), never guessed from a host's label.
 * Throws CertificateFormatError (E_EVIDENCE_MALFORMED) when the certificate does not parse.
 */
export function deviceModelOf(chainDer: readonly Uint8Array[]): NvDeviceModel {
  const identity = chainDer[1];
  const hwmodel = identity === undefined ? null : commonName(parseCert(identity).subject);
  const m = hwmodel === null ? undefined : MODELS.find((x) => x.re.test(hwmodel));
  return m === undefined
    ? { kind: 'unknown', arch: 'UNKNOWN', hwmodel }
    : { kind: m.kind, arch: m.arch, hwmodel };
}
