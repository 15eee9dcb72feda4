import { FirnError, type TeeTypeName } from '@firn/core';
import { parsePckExtensions } from './pckExtensions.ts';
import { CERT_DATA_PCK_CHAIN, type DcapQuote, parseDcapQuote } from './quote.ts';
import { chainCertificates, parseCertificate } from './x509.ts';

function le16(n: number): Uint8Array {
  return Uint8Array.of(n & 0xff, (n >> 8) & 0xff);
}

/**
 * The registers firn reduces to one measurement digest, in order: SGX MRENCLAVE, MRSIGNER,
 * ISVPRODID, ISVSVN (little-endian, as in the report); TDX MRTD, RTMR0..3.
 */
export function dcapMeasurementRegisters(q: DcapQuote): Uint8Array[] {
  if (q.body.kind === 'sgx') {
    const r = q.body.report;
    return [r.mrEnclave, r.mrSigner, le16(r.isvProdId), le16(r.isvSvn)];
  }
  const r = q.body.report;
  return [r.mrTd, r.rtmr0, r.rtmr1, r.rtmr2, r.rtmr3];
}

/**
 * What an enclave on real hardware learns about itself from one of its own quotes: its TEE type,
 * measurement registers and the PPID of its PCK certificate. Nothing is verified: the enclave uses
 * this only to name itself; verifiers derive the same values from verified quotes.
 */
export function dcapSelfIdentity(quote: Uint8Array): {
  teeType: TeeTypeName;
  registers: Uint8Array[];
  platformId: Uint8Array;
} {
  const q = parseDcapQuote(quote);
  if (q.certification.certDataType !== CERT_DATA_PCK_CHAIN)
    throw new FirnError(
      'E_UNSUPPORTED',
      'the quote carries no PCK chain, so the PPID is not known to the enclave',
    );
  const leaf = chainCertificates(q.certification.certData, 'PCK chain')[0];
  if (!leaf) throw new FirnError('E_EVIDENCE_MALFORMED', 'empty PCK chain');
  return {
    teeType: q.body.kind,
    registers: dcapMeasurementRegisters(q),
    platformId: parsePckExtensions(parseCertificate(leaf)).ppid,
  };
}
