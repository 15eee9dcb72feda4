import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { rawMember } from '../collateral/createCollateralFetcher.ts';
import { VECTORS, iso, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import { describeEvidenceVerifierBehaviour } from '../../test/evidenceVerifierBehaviour.ts';
import { tdxVerifier } from './tdxVerifier.ts';

// The real quote carries 70 bytes of zero padding after its signature data; cutting padding is
// accepted by design, so the suite (which cuts the last byte) gets the quote without it.
const full = vector(VECTORS.tdx.quote);
const q = tdxVerifier.parse(full);
const quote = full.subarray(
  0,
  q.signedBytes.length + 4 + Buffer.from(full).readUInt32LE(q.signedBytes.length),
);

// The shared verifier behaviour on the real TDX v4 vector; every-offset flips live in
// dcap/verifyDcapQuote.test.ts, so this samples the signed regions.
describeEvidenceVerifierBehaviour({
  name: 'tdx (real Intel TDX v4 quote)',
  verifier: tdxVerifier,
  quote,
  ctx: { now: VECTORS.tdx.now, collateral: vectorJson(VECTORS.tdx.collateral) },
  // header + TD report; signature, attestation key, cert data header, QE report, QE signature, auth data
  signedRegions: [
    [0, 632],
    [636, 636 + 64 + 64 + 6 + 384 + 64 + 2 + 32],
  ],
  flipSamples: 64,
  wrongRootCtx: {
    now: VECTORS.tdx.now,
    collateral: vectorJson(VECTORS.tdx.collateral),
    roots: [vector(VECTORS.intelTdx.root)],
  },
  expiredAt: iso('2025-06-01T00:00:00Z'),
});

// The same behaviour on a real TDX v5 quote (TD 1.5 body; vectors/pcs/tdx-90c06f000000-v5).
const V5_DIR = fileURLToPath(new URL('../../vectors/pcs/tdx-90c06f000000-v5/', import.meta.url));
const v5Quote = new Uint8Array(readFileSync(`${V5_DIR}quote.dat`));
const v5Parsed = tdxVerifier.parse(v5Quote);
const v5Collateral = (() => {
  const f = (n: string) => readFileSync(`${V5_DIR}${n}`);
  const h = JSON.parse(f('headers.json').toString('utf8')) as Record<string, Record<string, string>>;
  const tcb = f('tcb.json').toString('utf8');
  const qe = f('qe-identity.json').toString('utf8');
  const sig = (b: string) => (JSON.parse(b) as { signature: string }).signature;
  return {
    pck_crl_issuer_chain: decodeURIComponent(h.pckcrl!['SGX-PCK-CRL-Issuer-Chain']!),
    root_ca_crl: f('rootcacrl.der').toString('hex'),
    pck_crl: f('pckcrl.der').toString('hex'),
    tcb_info_issuer_chain: decodeURIComponent(h.tcb!['TCB-Info-Issuer-Chain']!),
    tcb_info: rawMember(tcb, 'tcbInfo'),
    tcb_info_signature: sig(tcb),
    qe_identity_issuer_chain: decodeURIComponent(h.qe!['SGX-Enclave-Identity-Issuer-Chain']!),
    qe_identity: rawMember(qe, 'enclaveIdentity'),
    qe_identity_signature: sig(qe),
  };
})();
const v5SigLen = Buffer.from(v5Quote).readUInt32LE(v5Parsed.signedBytes.length);
describeEvidenceVerifierBehaviour({
  name: 'tdx (real Intel TDX v5 quote, TD 1.5)',
  verifier: tdxVerifier,
  quote: v5Quote.subarray(0, v5Parsed.signedBytes.length + 4 + v5SigLen),
  ctx: { now: 1749945600, collateral: v5Collateral },
  // header + body descriptor + TD 1.5 report; then signature, key, QE report, its signature, auth data
  signedRegions: [
    [0, v5Parsed.signedBytes.length],
    [v5Parsed.signedBytes.length + 4, v5Parsed.signedBytes.length + 4 + 64 + 64 + 6 + 384 + 64 + 2 + 32],
  ],
  flipSamples: 48,
  wrongRootCtx: { now: 1749945600, collateral: v5Collateral, roots: [vector(VECTORS.intelTdx.root)] },
  // verify refuses collateral not yet issued (past nextUpdate is the policy's call)
  expiredAt: iso('2025-06-01T00:00:00Z'),
});
