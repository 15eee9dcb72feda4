import { FirnError } from '@firn/core';
import { hexBytes, MAX_COLLATERAL_JSON } from './collateralJson.ts';
import { MAX_CRL_BYTES } from './x509.ts';

/**
 * DCAP collateral for one quote, in the shape of dcap-qvl's QuoteCollateralV3. The JSON texts are
 * kept exactly as served, because the signatures cover those bytes and nothing re-serialised.
 */
export interface QuoteCollateralV3 {
  pckCrlIssuerChain: string;
  rootCaCrl: Uint8Array;
  pckCrl: Uint8Array;
  tcbInfoIssuerChain: string;
  tcbInfo: string;
  tcbInfoSignature: Uint8Array;
  qeIdentityIssuerChain: string;
  qeIdentity: string;
  qeIdentitySignature: Uint8Array;
  /** The PCK chain (PEM, leaf first) when the quote carries only a PPID (certification data 1-4). */
  pckCertificateChain?: string;
}

const bad = (m: string) => new FirnError('E_EVIDENCE_COLLATERAL', `collateral: ${m}`);

function text(o: Record<string, unknown>, snake: string, camel: string, max = MAX_COLLATERAL_JSON): string {
  const v = o[camel] ?? o[snake];
  if (typeof v !== 'string') throw bad(`${snake} must be a string`);
  if (v.length > max) throw bad(`${snake} is over ${max} characters`);
  return v;
}

function bytes(o: Record<string, unknown>, snake: string, camel: string, max: number): Uint8Array {
  const v = o[camel] ?? o[snake];
  if (v instanceof Uint8Array) {
    if (v.length > max) throw bad(`${snake} is over ${max} bytes`);
    return v;
  }
  // dcap-qvl writes bytes as hex strings; serde's default writes them as arrays of numbers.
  if (typeof v === 'string') {
    const h = v.startsWith('0x') ? v.slice(2) : v;
    const b = h.length > max * 2 ? undefined : hexBytes(h);
    if (b === undefined) throw bad(`${snake} must be hex of at most ${max} bytes`);
    return b;
  }
  if (Array.isArray(v) && v.length <= max && v.every((x) => Number.isInteger(x) && x >= 0 && x <= 255))
    return Uint8Array.from(v as number[]);
  throw bad(`${snake} must be bytes`);
}

/** Check and normalise collateral given as dcap-qvl JSON (snake_case) or as QuoteCollateralV3 itself. */
export function toQuoteCollateralV3(value: unknown): QuoteCollateralV3 {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('must be an object');
  const o = value as Record<string, unknown>;
  const c: QuoteCollateralV3 = {
    pckCrlIssuerChain: text(o, 'pck_crl_issuer_chain', 'pckCrlIssuerChain'),
    rootCaCrl: bytes(o, 'root_ca_crl', 'rootCaCrl', MAX_CRL_BYTES),
    pckCrl: bytes(o, 'pck_crl', 'pckCrl', MAX_CRL_BYTES),
    tcbInfoIssuerChain: text(o, 'tcb_info_issuer_chain', 'tcbInfoIssuerChain'),
    tcbInfo: text(o, 'tcb_info', 'tcbInfo'),
    tcbInfoSignature: bytes(o, 'tcb_info_signature', 'tcbInfoSignature', 64),
    qeIdentityIssuerChain: text(o, 'qe_identity_issuer_chain', 'qeIdentityIssuerChain'),
    qeIdentity: text(o, 'qe_identity', 'qeIdentity'),
    qeIdentitySignature: bytes(o, 'qe_identity_signature', 'qeIdentitySignature', 64),
  };
  const chain = o.pckCertificateChain ?? o.pck_certificate_chain;
  if (chain !== undefined && chain !== null)
    c.pckCertificateChain = text(o, 'pck_certificate_chain', 'pckCertificateChain');
  return c;
}
