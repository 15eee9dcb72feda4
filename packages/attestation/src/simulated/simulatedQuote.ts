import { ByteReader, concatBytes, encodeFields, FirnError, TAGS, TooLargeError, utf8 } from '@firn/core';

/**
 * Simulated quote, wire format v1 (all integers big-endian):
 *   magic "FSQ1" | version u16 (1) | flags u16 (bit 0: debug) | measurement[32] | platformIdLen u8 |
 *   platformId | reportData[64] | svn u16 | akCertLen u16 | akCert (DER) | signature[64]
 * The signature is ECDSA P-256 (r||s) by the attestation key over encodeFields([TAGS.simQuote,
 * everything before the signature]).
 */
export const SIM_QUOTE_MAGIC = utf8('FSQ1');
export const SIM_QUOTE_VERSION = 1;
export const SIM_QUOTE_MAX_BYTES = 8192;
const MAX_CERT = 4096;

export interface SimulatedQuote {
  version: number;
  debug: boolean;
  measurement: Uint8Array;
  platformId: Uint8Array;
  reportData: Uint8Array;
  svn: number;
  akCert: Uint8Array;
  signature: Uint8Array;
  /** The bytes the signature covers (before tagging). */
  signedBytes: Uint8Array;
}

export class SimulatedQuoteError extends FirnError {
  override readonly name = 'SimulatedQuoteError';
  constructor(message: string, cause?: unknown) {
    super('E_EVIDENCE_MALFORMED', `simulated quote: ${message}`, cause === undefined ? {} : { cause });
  }
}

export function encodeSimulatedQuoteBody(
  q: Omit<SimulatedQuote, 'signature' | 'signedBytes' | 'version'>,
): Uint8Array {
  if (q.measurement.length !== 32 || q.reportData.length !== 64)
    throw new SimulatedQuoteError('bad field sizes');
  if (q.platformId.length === 0 || q.platformId.length > 64)
    throw new SimulatedQuoteError('bad platformId size');
  if (q.akCert.length > MAX_CERT) throw new SimulatedQuoteError('attestation key certificate too large');
  const hdr = new Uint8Array(8);
  const dv = new DataView(hdr.buffer);
  hdr.set(SIM_QUOTE_MAGIC, 0);
  dv.setUint16(4, SIM_QUOTE_VERSION);
  dv.setUint16(6, q.debug ? 1 : 0);
  const svn = new Uint8Array(2);
  new DataView(svn.buffer).setUint16(0, q.svn);
  const certLen = new Uint8Array(2);
  new DataView(certLen.buffer).setUint16(0, q.akCert.length);
  return concatBytes(
    hdr,
    q.measurement,
    Uint8Array.of(q.platformId.length),
    q.platformId,
    q.reportData,
    svn,
    certLen,
    q.akCert,
  );
}

/** The message the attestation key signs: the tagged body. */
export function simulatedQuoteSigningInput(body: Uint8Array): Uint8Array {
  return encodeFields([utf8(TAGS.simQuote), body]);
}

/** Parse a simulated quote: structure and sizes only, no signature is trusted here. */
export function parseSimulatedQuote(bytes: Uint8Array): SimulatedQuote {
  if (!(bytes instanceof Uint8Array)) throw new SimulatedQuoteError('not bytes');
  if (bytes.length > SIM_QUOTE_MAX_BYTES)
    throw new TooLargeError('simulated quote', bytes.length, SIM_QUOTE_MAX_BYTES);
  try {
    const r = new ByteReader(bytes, 'simulated quote');
    const magic = r.take(4, 'magic');
    if (!magic.every((b, i) => b === SIM_QUOTE_MAGIC[i])) throw new SimulatedQuoteError('bad magic');
    const version = r.u16be('version');
    if (version !== SIM_QUOTE_VERSION) throw new SimulatedQuoteError(`unsupported version ${version}`);
    const flags = r.u16be('flags');
    if ((flags & ~1) !== 0) throw new SimulatedQuoteError('unknown flags');
    const measurement = r.take(32, 'measurement');
    const pidLen = r.u8('platformId length');
    if (pidLen === 0 || pidLen > 64) throw new SimulatedQuoteError('bad platformId length');
    const platformId = r.take(pidLen, 'platformId');
    const reportData = r.take(64, 'reportData');
    const svn = r.u16be('svn');
    const certLen = r.u16be('akCert length');
    const akCert = r.takeCapped(certLen, MAX_CERT, 'akCert');
    const signedBytes = bytes.subarray(0, r.offset);
    const signature = r.take(64, 'signature');
    r.end('signature');
    return {
      version,
      debug: (flags & 1) === 1,
      measurement,
      platformId,
      reportData,
      svn,
      akCert,
      signature,
      signedBytes,
    };
  } catch (e) {
    if (e instanceof SimulatedQuoteError) throw e;
    throw new SimulatedQuoteError((e as Error).message, e);
  }
}
