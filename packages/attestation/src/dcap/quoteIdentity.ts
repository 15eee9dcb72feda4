import { FirnError, type TeeTypeName } from '@firn/core';
import { parsePckExtensions } from './pckExtensions.ts';
import { CERT_DATA_PCK_CHAIN, type DcapQuote, parseDcapQuote } from './quote.ts';
import { chainCertificates, parseCertificate } from './x509.ts';

function le16(n: number): Uint8Array {
  return Uint8Array.of(n & 0xff, (n >> 8) & 0xff);
}

/**
 * The registers firn reduces to one measurement digest, in order: SGX MRENCLAVE, MRSIGNER,
 * ISVPRODID, ISVSVN (little-endian, as in the report); TDX MRTD, RTMR0..3, TD ATTRIBUTES, XFAM,
 * and MRSERVICETD when it is non-zero (TD 1.5 reports). TD attributes and XFAM are launch-time
 * choices MRTD does not cover (debug, SEPT_VE_DISABLE, which CPU state the TD may use), so two TDs
 * with the same image but other attributes get other identities (decision 0920). A zero MRSERVICETD
 * is left out so that the same TD has the same identity in v4 and v5 quotes.
 */
export function dcapMeasurementRegisters(q: DcapQuote): Uint8Array[] {
  if (q.body.kind === 'sgx') {
    const r = q.body.report;
    return [r.mrEnclave, r.mrSigner, le16(r.isvProdId), le16(r.isvSvn)];
  }
  const r = q.body.report;
  const regs = [r.mrTd, r.rtmr0, r.rtmr1, r.rtmr2, r.rtmr3, r.tdAttributes, r.xfam];
  if (r.mrServiceTd?.some((x) => x !== 0)) regs.push(r.mrServiceTd);
  return regs;
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
