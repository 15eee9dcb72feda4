import type { AttestationPolicy } from '@firn/attestation';
import {
  createFirnClients,
  FeeCeilingError,
  type FirnClients,
  type FirnDeployment,
  getJob,
  JobStatus,
  postJob,
  resolveFeeCeiling,
  reclaimJob,
  sendFilledWithinCaps,
  withdrawCredits,
} from '@firn/chain';
import { FirnError, type Hex, TEE_TYPES, type TeeTypeName } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { formatEther } from 'viem';
import { type AttestedNode, type AttestNodeOptions, attestNode } from './attestNode.ts';
import { ChainClock } from './chainClock.ts';
import { AgreeingChainView, type ChainViewOptions } from './chainView.ts';
import { NodeApi } from './nodeApi.ts';
import type { SealedInput } from './sealInput.ts';

/** What a requester needs to reach the market and one attested node (jobs and sessions alike). */
export interface MarketOptions {
  rpcUrl: string;
  deployment: FirnDeployment;
  /** Pays the escrow and signs the grants. */
  requesterKey: Hex;
  /** Generated when absent. */
  requesterKem?: { privateKey: Uint8Array; publicKey: Uint8Array };
  /** Endpoint; else the first Active node of the registry. */
  node?: string;
  /**
   * The node's Enclave ID, when the requester already chose it: only that node's registry record
   * is read (one record, not the whole registry per job). With `node` too, the registered
   * endpoint must be `node` (else E_INVALID_INPUT).
   */
  enclaveId?: Hex;
  /** Enclave IDs not to choose automatically (nodes already tried and lost). */
  exclude?: readonly Hex[];
  /**
   * Measurements of the first-party image (firn-ml) the requester accepts for a job without
   * `app`: the automatic node choice skips every other node (docs/decisions/1090). Absent: no filter.
   */
  firstPartyMeasurements?: readonly Hex[];
  policy: AttestationPolicy;
  roots?: Partial<Record<TeeTypeName, Uint8Array[]>>;
  gpuRoots?: AttestNodeOptions['gpuRoots'];
  escrow: bigint;
  /**
   * Work units the escrow pays for (the job's maxWorkUnits): at finalize the node is paid
   * escrow * min(workUnits, maxWorkUnits) / maxWorkUnits and the rest is credited back to the
   * requester (withdraw it with `withdrawCredits`). For an inference session a request's work
   * units are the element count of its input tensors, so a budget of N requests of E elements is
   * N * E. Absent or 0: the whole escrow for any accepted proof (all-or-nothing).
   */
  maxWorkUnits?: bigint;
  /** How long the job (deadline) and its grants last; default 1 hour. */
  deadlineSeconds?: number;
  claimTimeoutSeconds?: number;
  /** Unix seconds (evidence checks and grant expiry). */
  now?: () => number;
  /**
   * More RPC endpoints of the same chain; registry reads (node, allow-list) must agree on all of
   * them at one block, else E_CHAIN_DISAGREEMENT (docs/decisions/0870-trusted-chain-view.md).
   */
  extraRpcUrls?: string[];
  chainView?: ChainViewOptions;
  /** Time for one control call to the node, ms (default DEFAULT_NODE_TIMEOUT_MS, 30 s). */
  nodeTimeoutMs?: number;
  /**
   * Called as soon as a postJob transaction is sent, before its receipt (a block or more later):
   * a caller interrupted meanwhile still knows the escrow it sent (decision 1665). Called again
   * for a resend or re-price of the same post, and for each repost on another node.
   */
  onPostSent?: (tx: PostJobSent) => void;
  /**
   * Called with each signed postJob transaction just before it is handed to the RPC (decision
   * 1760): its hash is what the chain will know it by, so a caller that records it here can find
   * the post however the send ends (the RPC takes it and never answers, the process dies before
   * the answer). A hash given here may never be sent (a refusal); onPostSent follows for one the
   * RPC took. When it throws, that transaction is not sent and the post fails with its error.
   */
  onPostSigned?: (tx: PostJobSent) => void;
}

/** A postJob transaction the node took, not yet known to be mined. */
export interface PostJobSent {
  /** The transaction hash (a re-priced resend has another one; either posts the job). */
  hash: Hex;
  /**
   * The job id the simulation just before sending returned: the id the job gets unless another
   * job was posted first in between (ids count postings). The receipt's JobPosted event is the
   * fact; this is what a user can be told while it is not there.
   */
  expectedJobId: Hex;
  /** The latest block when it was sent: the JobPosted event is in a later one. */
  fromBlock: bigint;
}

export interface MarketSession {
  clients: FirnClients;
  /** The registry view the node was chosen through (re-checked before grants leave). */
  view: AgreeingChainView;
  node: AttestedNode;
  api: NodeApi;
  kem: { privateKey: Uint8Array; publicKey: Uint8Array };
  now: () => number;
  /**
   * Chain time for judging waits and give-ups (a result's challenge window, a claim's lapse):
   * the block first seen at connect plus this process's own elapsed time, never the host clock.
   */
  chainClock: ChainClock;
  deadlineSeconds: number;
}

/**
 * The options a script passes, checked before any RPC is asked or anything sent: a mistake is
 * E_INVALID_INPUT naming the option (the key itself is never echoed).
 */
export function assertMarketOptions(opts: MarketOptions): void {
  const bad = (name: string, want: string) => new FirnError('E_INVALID_INPUT', `${name} must be ${want}`);
  if (typeof opts.rpcUrl !== 'string' || !/^https?:\/\/[^/]/i.test(opts.rpcUrl))
    throw bad(
      'rpcUrl',
      `an http(s) URL such as http://127.0.0.1:8545 (got ${JSON.stringify(String(opts.rpcUrl).slice(0, 80))})`,
    );
  for (const u of opts.extraRpcUrls ?? [])
    if (typeof u !== 'string' || !/^https?:\/\/[^/]/i.test(u))
      throw bad('extraRpcUrls (--also-rpc)', `http(s) URLs (got ${JSON.stringify(String(u).slice(0, 80))})`);
  if (typeof opts.requesterKey !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(opts.requesterKey))
    throw bad(
      'requesterKey',
      `a private key: a string of 0x and 64 hex digits (got a ${typeof opts.requesterKey} of another form)`,
    );
  if (typeof opts.escrow !== 'bigint' || opts.escrow < 0n)
    throw bad(
      'escrow',
      `a bigint amount of wei, e.g. 10n ** 16n for 0.01 ETH (got ${typeof opts.escrow} ${String(opts.escrow).slice(0, 40)})`,
    );
  if (typeof opts.policy !== 'object' || opts.policy === null)
    throw bad(
      'policy',
      'an attestation policy (e.g. DEV_POLICY or PRODUCTION_POLICY from @firn/attestation)',
    );
  if (typeof opts.deployment !== 'object' || opts.deployment === null)
    throw bad('deployment', 'the contract addresses (deploymentFromState or a firn deploy file)');
}

/** Attest a node under the requester's policy and prepare the clients to use it. */
export async function connectToNode(opts: MarketOptions): Promise<MarketSession> {
  assertMarketOptions(opts);
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  const clients = createFirnClients(opts.rpcUrl, opts.requesterKey, opts.deployment, {
    pollingIntervalMs: 100,
  });
  const view = AgreeingChainView.of(clients, opts.extraRpcUrls ?? [], opts.chainView ?? {});
  // An escrow the requester's balance cannot pay is the caller's mistake (not a chain outage to
  // retry): named before any node is attested or any input uploaded.
  const payer = clients.wallet?.account?.address;
  if (payer !== undefined && opts.escrow > 0n) {
    const balance = await clients.public.getBalance({ address: payer }).catch((e: unknown) => {
      throw new FirnError('E_UNAVAILABLE', `cannot reach the RPC endpoint ${opts.rpcUrl}`, { cause: e });
    });
    if (balance < opts.escrow)
      throw new FirnError(
        'E_INVALID_INPUT',
        `the escrow (--escrow ${formatEther(opts.escrow)} ETH) is more than the requester ${payer}'s balance of ${formatEther(balance)} ETH`,
      );
  }
  const chainClock = new ChainClock(async () => Number((await clients.public.getBlock()).timestamp));
  // The clock's origin is read while the node is attested (no added latency).
  const origin = chainClock.now();
  origin.catch(() => undefined);
  const node = await attestNode(clients, {
    policy: opts.policy,
    chainView: view,
    now: now(),
    ...(opts.roots === undefined ? {} : { roots: opts.roots }),
    ...(opts.gpuRoots === undefined ? {} : { gpuRoots: opts.gpuRoots }),
    ...(opts.node === undefined ? {} : { node: opts.node }),
    ...(opts.enclaveId === undefined ? {} : { enclaveId: opts.enclaveId }),
    ...(opts.exclude === undefined ? {} : { exclude: opts.exclude }),
    ...(opts.firstPartyMeasurements === undefined ? {} : { measurements: opts.firstPartyMeasurements }),
  });
  await origin;
  // Upload intents expire on the node's clock, which follows the chain: set forward from the later
  // of the host clock and chain time, so a host clock behind the chain does not send expired ones.
  const intentNow = () => Math.max(now(), chainClock.estimate() ?? 0);
  return {
    clients,
    view,
    node,
    api: new NodeApi(node.endpoint, opts.nodeTimeoutMs, {
      requesterKey: opts.requesterKey,
      scope: {
        chainId: opts.deployment.chainId,
        jobMarket: opts.deployment.jobMarket,
        enclaveId: node.enclaveId,
      },
      now: intentNow,
    }),
    kem: opts.requesterKem ?? (await generateKemKeyPair()),
    now,
    chainClock,
    deadlineSeconds: opts.deadlineSeconds ?? 3600,
  };
}

/** Upload a sealed artifact; the host must name the bytes we sent by their hash, nothing else. */
export async function uploadSealed(api: NodeApi, s: SealedInput, what: string): Promise<void> {
  const up = await api.uploadArtifact(s.sealed);
  if (up.id !== s.artifactId.toLowerCase())
    throw new FirnError('E_ARTIFACT_TAMPERED', `node ${api.endpoint} stored the ${what} under another id`, {
      details: { endpoint: api.endpoint, field: 'id' },
    });
}

/**
 * Post a job for the attested node's TEE type and measurement, with escrow, bound to the Enclave ID
 * the requester just attested: no other node can claim it (NodeNotEligible reason 6). Returns its id.
 */
export async function postJobFor(
  m: MarketSession,
  opts: Pick<
    MarketOptions,
    'escrow' | 'claimTimeoutSeconds' | 'maxWorkUnits' | 'onPostSent' | 'onPostSigned'
  >,
  commitments: { workloadHash: Hex; inputCommitment: Hex },
): Promise<Hex> {
  return (await postJobWithDeadline(m, opts, commitments)).jobId;
}

/**
 * Where a job was posted: the facts of its JobPosted transaction on this chain. A job id is
 * keccak256(chain id, market, n) and so repeats on a fresh chain with the same deployment (a
 * restarted devnet); the block hash tells the two apart (decision 1650).
 */
export interface JobPostedAt {
  /** The postJob transaction's hash. */
  txHash: Hex;
  /** The block it was mined in: number and hash. */
  blockNumber: bigint;
  blockHash: Hex;
}

/**
 * postJobFor, also returning the deadline it posted (unix seconds, the value the contract stores)
 * and where it was posted (`posted`): a plan or grant that must expire with the job takes this
 * deadline rather than recomputing it from a later clock reading, which can land one second later
 * (decision 1653).
 */
export async function postJobWithDeadline(
  m: MarketSession,
  opts: Pick<
    MarketOptions,
    'escrow' | 'claimTimeoutSeconds' | 'maxWorkUnits' | 'onPostSent' | 'onPostSigned'
  >,
  commitments: { workloadHash: Hex; inputCommitment: Hex },
): Promise<{ jobId: Hex; deadline: bigint; posted: JobPostedAt }> {
  const block = await m.clients.public.getBlock();
  const deadline = BigInt(Math.max(Number(block.timestamp), m.now()) + m.deadlineSeconds);
  const posted = await postJob(
    m.clients,
    {
      teeTypeMask: 1 << TEE_TYPES[m.node.teeType],
      allowedMeasurements: [m.node.measurement],
      enclaveIds: [m.node.enclaveId],
      ...commitments,
      deadline,
      claimTimeout: BigInt(opts.claimTimeoutSeconds ?? 900),
      escrow: opts.escrow,
      ...(opts.maxWorkUnits === undefined ? {} : { maxWorkUnits: opts.maxWorkUnits }),
    },
    {
      onSent: (hash, expectedJobId) => opts.onPostSent?.({ hash, expectedJobId, fromBlock: block.number }),
      onSigned: (hash, expectedJobId) =>
        opts.onPostSigned?.({ hash, expectedJobId, fromBlock: block.number }),
    },
  );
  return {
    jobId: posted.jobId,
    deadline,
    posted: {
      txHash: posted.hash,
      blockNumber: posted.receipt.blockNumber,
      blockHash: posted.receipt.blockHash,
    },
  };
}

/**
 * Reclaim the escrow of a job that failed, was never claimed, or was slashed (then with the
 * slashed stake), and withdraw it (refunds are credited, then pulled); false when it cannot be
 * reclaimed. With `lapsed`, a Claimed job is tried too (the contract accepts it once the claim
 * timeout or the deadline passed; the lapsed claim's bond goes to the governance treasury, the requester
 * gets its escrow, decision 1625); a revert
 * raises E_CHAIN_REVERTED.
 */
export async function reclaimIfPossible(clients: FirnClients, jobId: Hex, lapsed = false): Promise<boolean> {
  const j = await getJob(clients, jobId);
  const ok = [JobStatus.Failed, JobStatus.Open, JobStatus.Slashed, ...(lapsed ? [JobStatus.Claimed] : [])];
  if (!ok.includes(j.status)) return false;
  await reclaimJob(clients, jobId);
  await withdrawCredits(clients, 'jobMarket');
  return true;
}

/**
 * Make the chain produce a block now: a zero-value transfer from the requester to itself (costs
 * only gas). For chains that mine only on transactions (anvil), where a time condition such as a
 * lapsed claim is otherwise judged at the last block's old timestamp. With `receiptTimeoutMs`, the
 * receipt is awaited that long at most (the SDK's waits pass 10 s, decision 1475): an RPC that
 * takes transactions but never shows them mined cannot hold the caller (viem's
 * WaitForTransactionReceiptTimeoutError is raised then); without it, viem's default applies.
 */
export async function nudgeChain(clients: FirnClients, receiptTimeoutMs?: number): Promise<void> {
  const w = clients.wallet;
  if (!w?.account) return;
  // Fees and gas set here, within the client's fee ceiling (decision 1470): the RPC names them.
  const ceiling = clients.feeCeiling ?? resolveFeeCeiling();
  const f = await clients.public.estimateFeesPerGas();
  const tip = f.maxPriorityFeePerGas;
  if (tip !== undefined && tip > ceiling.maxPriorityFeePerGas)
    throw new FeeCeilingError(
      'maxPriorityFeePerGas',
      tip,
      ceiling.maxPriorityFeePerGas,
      'nudge',
      'the tip the RPC names',
    );
  if (f.gasPrice !== undefined && f.gasPrice > ceiling.maxFeePerGas)
    throw new FeeCeilingError(
      'gasPrice',
      f.gasPrice,
      ceiling.maxFeePerGas,
      'nudge',
      'the gas price the RPC names',
    );
  // Signed with every field filled here: viem's sendTransaction would ask the RPC to fill the
  // request (eth_fillTransaction), and a filled answer can replace this gas and these fees.
  const nonce = await clients.public.getTransactionCount({ address: w.account.address, blockTag: 'pending' });
  const hash = await sendFilledWithinCaps(clients, 'nudge', {
    chainId: clients.addresses.chainId,
    nonce,
    to: w.account.address,
    value: 0n,
    gas: 21_000n,
    ...(f.gasPrice !== undefined
      ? { type: 'legacy' as const, gasPrice: f.gasPrice }
      : {
          type: 'eip1559' as const,
          // Head-room trimmed to the ceiling (a cap under base fee + tip is refused by the pool).
          maxFeePerGas: (f.maxFeePerGas ?? 0n) < ceiling.maxFeePerGas ? f.maxFeePerGas : ceiling.maxFeePerGas,
          maxPriorityFeePerGas: tip,
        }),
  });
  await clients.public.waitForTransactionReceipt({
    hash,
    ...(receiptTimeoutMs === undefined ? {} : { timeout: receiptTimeoutMs }),
  });
}
