import type { Address, Hex } from 'viem';

/** Addresses of one firn deployment. */
export interface FirnDeployment {
  chainId: number;
  registry: Address;
  verifierSet: Address;
  jobMarket: Address;
  dataLedger: Address;
  /** The reward pool (FirnRewards); absent in deployment files written before it existed. */
  rewards?: Address;
  /** The TimelockController (FirnGovernance) that owns every contract. */
  timelock?: Address;
  /** Block of the first deployment transaction: where event scans start. */
  deployBlock: bigint;
}

/** Mirrors IFirnRegistry.NodeStatus (same numbers). */
export enum NodeStatus {
  None = 0,
  Pending = 1,
  Active = 2,
  Rejected = 3,
  Exiting = 4,
  Exited = 5,
  Slashed = 6,
}

/** Mirrors IFirnJobMarket.JobStatus (same numbers). */
export enum JobStatus {
  None = 0,
  Open = 1,
  Claimed = 2,
  Proved = 3,
  Paid = 4,
  Slashed = 5,
  Failed = 6,
  Reclaimed = 7,
}

/** Mirrors IFirnVerifierSet.VerifierStatus. */
export enum VerifierStatus {
  None = 0,
  Active = 1,
  Leaving = 2,
}

/**
 * Reasons in NodeNotEligible(jobId, enclaveId, reason). 7: the market never reopens a job to the
 * Enclave ID or operator whose claim on it lapsed or was released (decision 1768).
 */
export const NODE_INELIGIBLE_REASONS = {
  1: 'node not active',
  2: 'TEE type not accepted by the job',
  3: 'measurement no longer allow-listed',
  4: 'measurement not in the job list',
  5: 'TEE type no longer allowed by governance',
  6: 'Enclave ID not one the job is bound to',
  7: 'this node or its operator already held a claim on the job that lapsed or was released',
} as const;

/** Reasons `FirnRegistry.ineligibility(enclaveId)` returns (0 = eligible). */
export const REGISTRY_INELIGIBLE_REASONS = {
  1: 'node not Active',
  2: 'TEE type no longer allowed by governance',
  3: 'measurement revoked',
} as const;

/**
 * Whether an `ineligibility` reason is a restriction governance or the guardian made (2: TEE type
 * withdrawn, 3: measurement revoked), not the node's own act (1: not Active). Such a node loses
 * its epoch's points (decisions 1708, 1726) and a running claim of it may be ended at once with
 * its bond returned (decision 1723).
 */
export function isGovernanceRestriction(reason: number): boolean {
  return reason === 2 || reason === 3;
}

/** Bit (1 << teeType) of every TEE type a production deployment accepts: SGX, TDX, Nitro, SEV-SNP; never simulated. */
export const PRODUCTION_TEE_TYPES = 0x3c;
/** Every TEE type, the simulated one included (devnet and tests). */
export const DEVNET_TEE_TYPES = 0x3e;

/** A registry node as stored on chain (IFirnRegistry.Node) plus its id. */
export interface FirnNode {
  enclaveId: Hex;
  operator: Address;
  teeType: number;
  status: NodeStatus;
  rotationPending: boolean;
  round: number;
  unbondingEndsAt: bigint;
  /**
   * Deadline (unix seconds) of the round opened last: while it is open and undecided, anyone may
   * `expireRound` it from then on (decision 1833).
   */
  roundEndsAt: bigint;
  /** Latest end of a challenge window of this node's proofs: no withdrawal before it. */
  lockedUntil: bigint;
  /** Verifier-set snapshot of the open round (registration or rotation). */
  snapshotId: bigint;
  measurement: Hex;
  /** keccak256 of the tagged (teeType, platformId): one physical machine, one capacity share. */
  platformIdHash: Hex;
  enclaveAddress: Address;
  /** Not stored on chain: from the latest NodeRegistered or KeysRotated event (decision 1140). */
  kemPublicKey: Hex;
  /**
   * The round of the event `kemPublicKey` was read from (0: none found). Equal to `round` for a
   * Pending registration unless the RPC's logs lag its state (decision 1831).
   */
  publishedRound: number;
  /** Not stored on chain: from the latest NodeRegistered or EndpointUpdated event. */
  endpoint: string;
  evidenceDigest: Hex;
  stake: bigint;
  /** Vote weights (wei of verifier stake) cast for and against the open round. */
  approvalStake: bigint;
  refusalStake: bigint;
  pendingEnclaveAddress: Address;
  pendingKemPublicKey: Hex;
  pendingEvidenceDigest: Hex;
}

/**
 * A job: the packed record the market stores (IFirnJobMarket.Job) with the facts it keeps only as
 * hashes filled in from the job's events (JobPosted, the latest JobClaimed, ProofSubmitted), each
 * checked against the stored hash by `getJob` (docs/decisions/1142-facts-as-calldata.md).
 */
export interface FirnJob {
  jobId: Hex;
  requester: Address;
  teeTypeMask: number;
  status: JobStatus;
  /** Block time of JobPosted (0 when the event was not found). */
  postedAt: bigint;
  deadline: bigint;
  claimTimeout: bigint;
  /** Standing claim: claimExpiresAt - claimTimeout (0 when unclaimed). */
  claimedAt: bigint;
  claimExpiresAt: bigint;
  /** Block time of ProofSubmitted (0 before a proof). */
  provedAt: bigint;
  workloadHash: Hex;
  inputCommitment: Hex;
  allowedMeasurements: readonly Hex[];
  /** The Enclave IDs the requester bound the job to (empty: any eligible node). */
  enclaveIds: readonly Hex[];
  escrow: bigint;
  /** The claim bond held for the current claim. */
  bond: bigint;
  enclaveId: Hex;
  claimant: Address;
  /** The job's challenge window (s), fixed when it was posted. */
  challengeWindow: bigint;
  challengeEndsAt: bigint;
  measurement: Hex;
  outputCommitment: Hex;
  /** Facts recorded at submitProof, which disputes are judged against. */
  signer: Address;
  workUnits: bigint;
  startedAt: bigint;
  finishedAt: bigint;
  provedBlock: bigint;
  snapshotId: bigint;
  /** Verifier stake (wei) that disputed the proof so far. */
  disputeStake: bigint;
  /** Work units the escrow pays for (0: all-or-nothing); see PostJobParams.maxWorkUnits. */
  maxWorkUnits: bigint;
  /** keccak256 of the job's terms (JobTerms). */
  termsHash: Hex;
  /** While Claimed: the claim's hash; once Proved: keccak256 of the ProofFacts. */
  factsHash: Hex;
}
