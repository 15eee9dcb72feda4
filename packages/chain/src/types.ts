import type { Address, Hex } from 'viem';

/** Addresses of one firn deployment. */
export interface FirnDeployment {
  chainId: number;
  registry: Address;
  verifierSet: Address;
  jobMarket: Address;
  dataLedger: Address;
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

/** Reasons in NodeNotEligible(jobId, enclaveId, reason). */
export const NODE_INELIGIBLE_REASONS = {
  1: 'node not active',
  2: 'TEE type not accepted by the job',
  3: 'measurement no longer allow-listed',
  4: 'measurement not in the job list',
} as const;

/** A registry node as stored on chain (IFirnRegistry.Node) plus its id. */
export interface FirnNode {
  enclaveId: Hex;
  operator: Address;
  teeType: number;
  status: NodeStatus;
  rotationPending: boolean;
  round: number;
  approvals: number;
  refusals: number;
  registeredAt: bigint;
  unbondingEndsAt: bigint;
  measurement: Hex;
  enclaveAddress: Address;
  kemPublicKey: Hex;
  endpoint: string;
  evidenceDigest: Hex;
  stake: bigint;
  pendingEnclaveAddress: Address;
  pendingKemPublicKey: Hex;
  pendingEvidenceDigest: Hex;
}

/** A job as stored on chain (IFirnJobMarket.Job) plus its id. */
export interface FirnJob {
  jobId: Hex;
  requester: Address;
  teeTypeMask: number;
  status: JobStatus;
  postedAt: bigint;
  deadline: bigint;
  claimTimeout: bigint;
  workloadHash: Hex;
  inputCommitment: Hex;
  allowedMeasurements: readonly Hex[];
  escrow: bigint;
  enclaveId: Hex;
  claimant: Address;
  claimedAt: bigint;
  measurement: Hex;
  outputCommitment: Hex;
  workUnits: bigint;
  provedAt: bigint;
  challengeEndsAt: bigint;
  disputes: number;
}
