import { verify as nodeVerify, X509Certificate } from 'node:crypto';
import { bytesToHex, FirnError, measurementDigest } from '@firn/core';
import { markVerified, type EvidenceVerifier, type VerifiedEvidence, type VerifyContext } from '../types.ts';
import { parseSimulatedQuote, type SimulatedQuote, simulatedQuoteSigningInput } from './simulatedQuote.ts';

function cert(der: Uint8Array, what: string): X509Certificate {
  try {
    return new X509Certificate(Buffer.from(der));
  } catch (e) {
    throw new FirnError('E_EVIDENCE_MALFORMED', `${what} is not a valid X.509 certificate`, { cause: e });
  }
}

function withinValidity(c: X509Certificate, now: number, what: string): void {
  const from = Date.parse(c.validFrom) / 1000;
  const to = Date.parse(c.validTo) / 1000;
  if (!(now >= from && now <= to))
    throw new FirnError('E_EVIDENCE_EXPIRED', `${what} is not valid at ${now}`);
}

/**
 * Verify a simulated quote: the attestation-key certificate chains to one of the pinned simulated
 * roots and was valid at ctx.now, and the quote signature by that key covers every field. It
 * proves only that a holder of a simulated platform's attestation key produced the quote; it
 * proves nothing about hardware isolation (the host can read a simulated enclave's memory).
 */
export async function verifySimulatedQuote(q: SimulatedQuote, ctx: VerifyContext): Promise<VerifiedEvidence> {
  const roots = ctx.roots ?? [];
  if (roots.length === 0) throw new FirnError('E_EVIDENCE_CHAIN', 'no simulated root is pinned');
  const ak = cert(q.akCert, 'attestation key certificate');
  let root: X509Certificate | undefined;
  for (const r of roots) {
    const rc = cert(r, 'simulated root');
    if (ak.checkIssued(rc) && ak.verify(rc.publicKey)) {
      root = rc;
      break;
    }
  }
  if (root === undefined)
    throw new FirnError(
      'E_EVIDENCE_CHAIN',
      'attestation key certificate does not chain to a pinned simulated root',
    );
  // The platform id is the machine's, as the root certified it (CN: its first 8 or all 16 bytes):
  // one machine's attestation key must not speak for another machine (its sealing keys, its ID).
  const certified = /(?:^|\n)CN=firn simulated attestation key ([0-9a-f]{16,32})(?:\n|,|$)/.exec(
    ak.subject,
  )?.[1];
  if (certified === undefined || !bytesToHex(q.platformId).slice(2).startsWith(certified))
    throw new FirnError(
      'E_EVIDENCE_CHAIN',
      'the quote names a platform id its attestation key certificate was not issued for',
    );
  withinValidity(root, ctx.now, 'simulated root');
  withinValidity(ak, ctx.now, 'attestation key certificate');
  const ok = nodeVerify(
    'sha256',
    simulatedQuoteSigningInput(q.signedBytes),
    { key: ak.publicKey, dsaEncoding: 'ieee-p1363' },
    q.signature,
  );
  if (!ok) throw new FirnError('E_EVIDENCE_SIGNATURE', 'simulated quote signature does not verify');
  return markVerified({
    teeType: 'simulated',
    measurement: measurementDigest('simulated', [q.measurement]),
    measurements: { bundleSha256: bytesToHex(q.measurement), svn: String(q.svn) },
    platformId: q.platformId,
    reportData: q.reportData,
    debug: q.debug,
    tcbStatus: 'Simulated',
    advisoryIds: [],
    extra: { quoteVersion: q.version, attestationKeySubject: ak.subject },
  });
}

export const simulatedVerifier: EvidenceVerifier<SimulatedQuote> = {
  teeType: 'simulated',
  parse: parseSimulatedQuote,
  verify: verifySimulatedQuote,
};
