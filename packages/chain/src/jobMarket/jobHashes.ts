import { encodeAbiParameters, type Hex, keccak256 } from 'viem';

// The job market's stored hashes (IFirnJobMarket.Job.termsHash and factsHash, decision 1142),
// computed off chain. This module imports viem alone (no node: modules, no clients), so the web
// dashboard bundles it as it is (`@firn/chain/jobHashes`) and checks the chain's events with the
// same code the node, the verifier and the SDK use.

/**
 * What a claim passes back to `claimJob`: the preimage of the job's `termsHash`
 * (keccak256(abi.encode(workloadHash, inputCommitment, allowedMeasurements, enclaveIds))), read
 * from its JobPosted event. See docs/decisions/1142-facts-as-calldata.md.
 */
export interface JobTerms {
  workloadHash: Hex;
  inputCommitment: Hex;
  allowedMeasurements: readonly Hex[];
  enclaveIds: readonly Hex[];
}

/**
 * The facts recorded at submitProof (IFirnJobMarket.ProofFacts), which `dispute` and `finalize`
 * pass back; the market stores only keccak256(abi.encode(facts)) as the job's `factsHash`.
 */
export interface ProofFacts {
  signer: Hex;
  startedAt: bigint;
  finishedAt: bigint;
  provedBlock: bigint;
  challengeEndsAt: bigint;
  workUnits: bigint;
  snapshotId: bigint;
}

/**
 * keccak256(abi.encode(workloadHash, inputCommitment, allowedMeasurements, enclaveIds)): what the
 * market stores as a job's `termsHash`. Throws viem's encoding error on a field that is not bytes32.
 */
export function computeTermsHash(t: JobTerms): Hex {
  return keccak256(
    encodeAbiParameters(
      [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'bytes32[]' }, { type: 'bytes32[]' }],
      [t.workloadHash, t.inputCommitment, [...t.allowedMeasurements], [...t.enclaveIds]],
    ),
  );
}

/**
 * keccak256(abi.encode(ProofFacts{signer, startedAt, finishedAt, provedBlock, challengeEndsAt,
 * workUnits, snapshotId})): what the market stores as a Proved job's `factsHash`. Times are unix
 * seconds, every field a uint64 but the signer (an address).
 */
export function computeProofFactsHash(f: ProofFacts): Hex {
  return keccak256(
    encodeAbiParameters(
      [
        { type: 'address' },
        { type: 'uint64' },
        { type: 'uint64' },
        { type: 'uint64' },
        { type: 'uint64' },
        { type: 'uint64' },
        { type: 'uint64' },
      ],
      [f.signer, f.startedAt, f.finishedAt, f.provedBlock, f.challengeEndsAt, f.workUnits, f.snapshotId],
    ),
  );
}
