import { VECTORS, iso, vector, vectorJson } from '../dcap/testVectors.ts';
import { describeEvidenceVerifierBehaviour } from '../testing/evidenceVerifierBehaviour.ts';
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
