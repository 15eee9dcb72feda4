import {
  type Address,
  createPublicClient,
  decodeEventLog,
  type Hex,
  http,
  type Log,
  type PublicClient,
} from 'viem';
import {
  firnJobMarketAbi,
  firnRegistryAbi,
  firnRewardsAbi,
  firnVerifierSetAbi,
} from '../../../packages/chain/src/abi/generated.ts';

/**
 * The dashboard's view of a firn deployment, built from the chain alone (events read with
 * eth_getLogs in block ranges, then the current records with eth_call), and kept current by
 * reading new blocks from a cursor. Everything here is public chain data.
 */

/** What GET /config.json returns (apps/dashboard/server/serveDashboard.ts DashboardConfig). */
export interface PageConfig {
  chainId: number;
  jobMarket: Address;
  registry: Address;
  verifierSet: Address;
  rewards?: Address;
  fromBlock: string;
}

export const NODE_STATUS = ['None', 'Pending', 'Active', 'Rejected', 'Exiting', 'Exited', 'Slashed'] as const;
export const JOB_STATUS = [
  'None',
  'Open',
  'Claimed',
  'Proved',
  'Paid',
  'Slashed',
  'Failed',
  'Reclaimed',
] as const;
export const VERIFIER_STATUS = ['None', 'Active', 'Leaving'] as const;
export const TEE_TYPE_NAMES: Record<number, string> = { 1: 'simulated', 2: 'sgx', 3: 'tdx' };
/** Verifier refusal and dispute reason codes (packages/core/src/refusalCodes.ts, stable numbers). */
export const REASON_NAMES: Record<number, string> = {
  1: 'E_EVIDENCE_MALFORMED',
  2: 'E_EVIDENCE_SIGNATURE',
  3: 'E_EVIDENCE_CHAIN',
  4: 'E_EVIDENCE_REVOKED',
  5: 'E_EVIDENCE_COLLATERAL',
  6: 'E_EVIDENCE_EXPIRED',
  7: 'E_EVIDENCE_NONCE',
  8: 'E_EVIDENCE_BINDING',
  9: 'E_EVIDENCE_TCB',
  10: 'E_POLICY_REJECTED',
  11: 'E_IDENTITY_MISMATCH',
  12: 'E_MEASUREMENT_NOT_ALLOWED',
  13: 'E_UNREACHABLE',
  14: 'E_TOO_LARGE',
  15: 'E_UNSUPPORTED',
  16: 'E_PROOF_INVALID',
  19: 'E_RESULT_UNAVAILABLE',
  255: 'E_OTHER',
};

export interface NodeView {
  enclaveId: Hex;
  operator: Address;
  teeType: number;
  status: number;
  measurement: Hex;
  measurementAllowed: boolean;
  /** FirnRegistry.ineligibility: 0 eligible, else REGISTRY_INELIGIBLE_REASONS. */
  ineligibility: number;
  enclaveAddress: Address;
  endpoint: string;
  stake: bigint;
  approvalStake: bigint;
  refusalStake: bigint;
  registeredBlock: bigint;
  /** Liveness answers counted on chain (ChallengeAnswered), all epochs, and the last epoch answered. */
  answers: number;
  lastAnsweredEpoch: bigint | undefined;
  /** Epoch rewards claimed (NodeRewardClaimed), wei. */
  rewardsClaimed: bigint;
}

export interface VoteView {
  kind: 'approve' | 'refuse' | 'dispute';
  /** Enclave ID (approve, refuse) or job id (dispute). */
  subject: Hex;
  verifier: Address;
  reasonCode: number;
  weight: bigint;
  blockNumber: bigint;
}

export interface VerifierView {
  address: Address;
  status: number;
  stake: bigint;
  joinedAt: bigint;
}

export interface JobView {
  jobId: Hex;
  requester: Address;
  status: number;
  escrow: bigint;
  enclaveId: Hex;
  workloadHash: Hex;
  inputCommitment: Hex;
  outputCommitment: Hex;
  measurement: Hex;
  signer: Address;
  challengeEndsAt: bigint;
  postedBlock: bigint;
  /** The ProofSubmitted log (transaction and block), when the job was proved. */
  proofTx?: { hash: Hex; blockNumber: bigint };
  payout?: bigint;
}

export interface NetworkView {
  head: bigint;
  /** Latest block's timestamp, unix seconds (challenge countdowns run on chain time). */
  headTime: bigint;
  nodes: Map<Hex, NodeView>;
  verifiers: Map<Address, VerifierView>;
  votes: VoteView[];
  jobs: Map<Hex, JobView>;
  /** Last block whose events are applied. */
  cursor: bigint;
  /** Facts from events about records not read yet, applied once the record is there. */
  pending: {
    proofs: Map<Hex, { hash: Hex; blockNumber: bigint }>;
    payouts: Map<Hex, bigint>;
    answers: Map<Hex, bigint[]>;
    claims: Map<Hex, bigint>;
  };
}

/** Blocks per eth_getLogs call; public RPCs commonly cap a range at 2k-10k blocks. */
export const LOG_CHUNK_BLOCKS = 2000n;

const ALL_ABI = [...firnRegistryAbi, ...firnJobMarketAbi, ...firnVerifierSetAbi, ...firnRewardsAbi];

/** A public client for the dashboard's read-only RPC proxy (same origin, POST /rpc). */
export function createPageClient(rpcUrl: string): PublicClient {
  return createPublicClient({ transport: http(rpcUrl, { batch: false, retryCount: 2 }) }) as PublicClient;
}

/**
 * Logs of the deployment's contracts in [from, to], read in ranges of `chunk` blocks so no single
 * call exceeds an RPC's range limit; decoded against the firn ABIs (unknown logs are skipped).
 */
export async function readLogsChunked(
  client: PublicClient,
  addresses: Address[],
  from: bigint,
  to: bigint,
  chunk = LOG_CHUNK_BLOCKS,
): Promise<{ eventName: string; args: Record<string, unknown>; log: Log }[]> {
  const out: { eventName: string; args: Record<string, unknown>; log: Log }[] = [];
  for (let a = from; a <= to; a += chunk) {
    const b = a + chunk - 1n < to ? a + chunk - 1n : to;
    const logs = await client.getLogs({ address: addresses, fromBlock: a, toBlock: b });
    for (const log of logs) {
      try {
        const d = decodeEventLog({ abi: ALL_ABI, data: log.data, topics: log.topics });
        out.push({ eventName: d.eventName, args: (d.args ?? {}) as Record<string, unknown>, log });
      } catch {
        // an event of another contract at the same address set: not ours to show
      }
    }
  }
  return out;
}

/** An empty view whose cursor sits just before `fromBlock`. */
export function emptyNetwork(fromBlock: bigint): NetworkView {
  return {
    head: 0n,
    headTime: 0n,
    nodes: new Map(),
    verifiers: new Map(),
    votes: [],
    jobs: new Map(),
    cursor: fromBlock - 1n,
    pending: { proofs: new Map(), payouts: new Map(), answers: new Map(), claims: new Map() },
  };
}

async function refreshNode(client: PublicClient, c: PageConfig, v: NetworkView, id: Hex, block?: bigint) {
  const n = await client.readContract({
    address: c.registry,
    abi: firnRegistryAbi,
    functionName: 'getNode',
    args: [id],
  });
  const [allowed, inel] = await Promise.all([
    client.readContract({
      address: c.registry,
      abi: firnRegistryAbi,
      functionName: 'isMeasurementAllowed',
      args: [n.teeType, n.measurement],
    }),
    client.readContract({
      address: c.registry,
      abi: firnRegistryAbi,
      functionName: 'ineligibility',
      args: [id],
    }),
  ]);
  const prev = v.nodes.get(id);
  v.nodes.set(id, {
    enclaveId: id,
    operator: n.operator,
    teeType: n.teeType,
    status: n.status,
    measurement: n.measurement,
    measurementAllowed: allowed,
    ineligibility: Number(inel),
    enclaveAddress: n.enclaveAddress,
    endpoint: n.endpoint,
    stake: n.stake,
    approvalStake: n.approvalStake,
    refusalStake: n.refusalStake,
    registeredBlock: prev?.registeredBlock ?? block ?? 0n,
    answers: prev?.answers ?? 0,
    lastAnsweredEpoch: prev?.lastAnsweredEpoch,
    rewardsClaimed: prev?.rewardsClaimed ?? 0n,
  });
}

async function refreshJob(client: PublicClient, c: PageConfig, v: NetworkView, id: Hex, block?: bigint) {
  const j = await client.readContract({
    address: c.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'getJob',
    args: [id],
  });
  const prev = v.jobs.get(id);
  v.jobs.set(id, {
    jobId: id,
    requester: j.requester,
    status: j.status,
    escrow: j.escrow,
    enclaveId: j.enclaveId,
    workloadHash: j.workloadHash,
    inputCommitment: j.inputCommitment,
    outputCommitment: j.outputCommitment,
    measurement: j.measurement,
    signer: j.signer,
    challengeEndsAt: j.challengeEndsAt,
    postedBlock: prev?.postedBlock ?? block ?? 0n,
    ...(prev?.proofTx ? { proofTx: prev.proofTx } : {}),
    ...(prev?.payout !== undefined ? { payout: prev.payout } : {}),
  });
}

async function refreshVerifier(client: PublicClient, c: PageConfig, v: NetworkView, addr: Address) {
  const r = await client.readContract({
    address: c.verifierSet,
    abi: firnVerifierSetAbi,
    functionName: 'getVerifier',
    args: [addr],
  });
  v.verifiers.set(addr, { address: addr, status: r.status, stake: r.stake, joinedAt: r.joinedAt });
}

/**
 * Apply every event from the cursor to the head: new nodes, votes, verifiers and jobs appear, and
 * each record an event touched is read again. Returns whether anything changed. Reads at most
 * `maxBlocks` blocks per call so a long history loads in steps (the UI shows progress).
 */
export async function advance(
  client: PublicClient,
  c: PageConfig,
  v: NetworkView,
  maxBlocks = 50_000n,
): Promise<boolean> {
  const head = await client.getBlockNumber();
  const block = await client.getBlock({ blockNumber: head });
  v.head = head;
  v.headTime = block.timestamp;
  if (head <= v.cursor) return false;
  const to = head - v.cursor > maxBlocks ? v.cursor + maxBlocks : head;
  const addresses = [c.registry, c.jobMarket, c.verifierSet, ...(c.rewards ? [c.rewards] : [])];
  const events = await readLogsChunked(client, addresses, v.cursor + 1n, to);
  const nodes = new Map<Hex, bigint>();
  const jobs = new Map<Hex, bigint>();
  const verifiers = new Set<Address>();
  const { proofs: pendingProofs, payouts: finalized, answers: answered, claims: claimed } = v.pending;
  for (const { eventName, args, log } of events) {
    const bn = log.blockNumber ?? 0n;
    const id = args['enclaveId'] as Hex | undefined;
    const jobId = args['jobId'] as Hex | undefined;
    if (log.address.toLowerCase() === c.registry.toLowerCase() && id) nodes.set(id, nodes.get(id) ?? bn);
    if (log.address.toLowerCase() === c.jobMarket.toLowerCase() && jobId)
      jobs.set(jobId, jobs.get(jobId) ?? bn);
    switch (eventName) {
      case 'NodeApproved':
      case 'NodeRefused':
        v.votes.push({
          kind: eventName === 'NodeApproved' ? 'approve' : 'refuse',
          subject: id!,
          verifier: args['verifier'] as Address,
          reasonCode: Number(args['reasonCode'] ?? 0),
          weight: args['weight'] as bigint,
          blockNumber: bn,
        });
        verifiers.add(args['verifier'] as Address);
        break;
      case 'JobDisputed':
        v.votes.push({
          kind: 'dispute',
          subject: jobId!,
          verifier: args['verifier'] as Address,
          reasonCode: Number(args['reasonCode']),
          weight: args['weight'] as bigint,
          blockNumber: bn,
        });
        break;
      case 'VerifierJoined':
      case 'LeaveRequested':
      case 'VerifierDeactivated':
      case 'VerifierSlashed':
      case 'VerifierWithdrew':
        verifiers.add(args['verifier'] as Address);
        break;
      case 'ProofSubmitted':
        if (jobId && log.transactionHash) {
          const j = v.jobs.get(jobId);
          const proofTx = { hash: log.transactionHash, blockNumber: bn };
          if (j) j.proofTx = proofTx;
          else pendingProofs.set(jobId, proofTx);
        }
        break;
      case 'JobFinalized':
        if (jobId) finalized.set(jobId, args['payout'] as bigint);
        break;
      case 'ChallengeAnswered':
        if (id) {
          answered.set(id, (answered.get(id) ?? []).concat(args['epoch'] as bigint));
        }
        break;
      case 'NodeRewardClaimed':
        if (id) claimed.set(id, (claimed.get(id) ?? 0n) + (args['amount'] as bigint));
        break;
    }
  }
  await Promise.all([
    ...[...nodes].map(([id, bn]) => refreshNode(client, c, v, id, bn)),
    ...[...jobs].map(([id, bn]) => refreshJob(client, c, v, id, bn)),
    ...[...verifiers].map((a) => refreshVerifier(client, c, v, a)),
  ]);
  for (const [id, proofTx] of pendingProofs) {
    const j = v.jobs.get(id);
    if (j) {
      j.proofTx = proofTx;
      pendingProofs.delete(id);
    }
  }
  for (const [id, payout] of finalized) {
    const j = v.jobs.get(id);
    if (j) {
      j.payout = payout;
      finalized.delete(id);
    }
  }
  for (const [id, epochs] of answered) {
    const n = v.nodes.get(id);
    if (!n) continue;
    n.answers += epochs.length;
    for (const e of epochs)
      if (n.lastAnsweredEpoch === undefined || e > n.lastAnsweredEpoch) n.lastAnsweredEpoch = e;
    answered.delete(id);
  }
  for (const [id, amount] of claimed) {
    const n = v.nodes.get(id);
    if (!n) continue;
    n.rewardsClaimed += amount;
    claimed.delete(id);
  }
  v.cursor = to;
  return events.length > 0 || to === head;
}
