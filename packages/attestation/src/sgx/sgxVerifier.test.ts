import { VECTORS, iso, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import { describeEvidenceVerifierBehaviour } from '../../test/evidenceVerifierBehaviour.ts';
import { sgxVerifier } from './sgxVerifier.ts';

// The shared verifier behaviour on the real SGX v3 vector; every-offset flips live in
// dcap/verifyDcapQuote.test.ts, so this samples the signed regions.
describeEvidenceVerifierBehaviour({
  name: 'sgx (real Intel SGX v3 quote)',
  verifier: sgxVerifier,
  quote: vector(VECTORS.sgx.quote),
  ctx: { now: VECTORS.sgx.now, collateral: vectorJson(VECTORS.sgx.collateral) },
  // header + report body; signature, attestation key, QE report, QE signature, auth data
  signedRegions: [
    [0, 432],
    [436, 436 + 64 + 64 + 384 + 64 + 2 + 32],
  ],
  flipSamples: 64,
  wrongRootCtx: {
    now: VECTORS.sgx.now,
    collateral: vectorJson(VECTORS.sgx.collateral),
    roots: [vector(VECTORS.intelSgx.root)],
  },
  expiredAt: iso('2025-06-01T00:00:00Z'),
});
