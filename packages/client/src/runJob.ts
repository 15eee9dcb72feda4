import { getJob, getJobStatus, JobStatus } from '@firn/chain';
import { FirnError, type Hex, parseOutputBound, withParamsSalt, type WorkProofJson } from '@firn/core';
import { artifactId, type CreateGrantParams, generateKemKeyPair, type RequesterChannel } from '@firn/crypto';
import { assertStillEligible } from './attestNode.ts';
import { buildJobRequest, jobCommitments } from './buildJobRequest.ts';
import {
  connectToNode,
  type MarketOptions,
  type MarketSession,
  nudgeChain,
  type JobPostedAt,
  postJobWithDeadline,
  reclaimIfPossible,
  uploadSealed,
} from './marketJob.ts';
import {
  followUntilLapse,
  LAPSE_MARGIN_S,
  minBig,
  NUDGE_RECEIPT_MS,
  type StreamEnd,
} from './followUntilLapse.ts';
import { hostText, type NodeJobResult } from './nodeApi.ts';
import { openOutput, type SealedInput, sealInput } from './sealInput.ts';
import { fetchResultOutputs, summaryOutputSizes, verifyResultProof } from './resultOutputs.ts';

export interface RunJobOptions extends MarketOptions {
  kind: 'inference' | 'training';
  /** Plaintext inputs, sealed here; or already sealed ones (with their data key), e.g. for a retry. */
  inputs: (
    | { role: string; bytes: Uint8Array; contentType: string }
    | { role: string; sealed: SealedInput }
  )[];
  params: Record<string, unknown>;
  onProgress?: (event: Record<string, unknown>) => void;
  /** Fault tests only: alter grant terms before they are signed. */
  mutateGrant?: (p: CreateGrantParams) => CreateGrantParams;
  /**
   * The most storage the job's sealed outputs may take, bytes (each output rounded up to 4096-byte
   * blocks; 4096..2 GiB): the node reserves it before its claim, refuses the job at once when its
   * quotas cannot hold it, and the enclave fails a job whose outputs exceed it (E_TOO_LARGE).
   * Checked before anything is posted (E_INVALID_INPUT). Absent: none declared (decision 1690).
   */
  maxOutputBytes?: number;
  /**
   * Called once the job is posted (e.g. to log its id), with where it was posted (its transaction
   * and block: what binds a local record of the job to this chain, decision 1650).
   */
  onPosted?: (jobId: Hex, posted: JobPostedAt) => void;
  /** Interval between attempts to fetch a proved job's result the node does not serve, ms (default 2000). */
  resultRetryMs?: number;
  /**
   * Nodes to try in all (default 3). A node that becomes unreachable, restarts and fails the job
   * (E_ENCLAVE_UNAVAILABLE), is full (E_RATE_LIMITED) or lets its claim lapse is replaced: the
   * job's escrow is reclaimed, another eligible node is attested and the inputs re-granted to it
   * (docs/decisions/1060-job-reassignment.md). 1 disables reassignment.
   */
  maxNodes?: number;
  /** Interval between chain reads while waiting for a lost node's claim to end, ms (default 1000). */
  pollMs?: number;
}

export interface RunJobResult {
  jobId: Hex;
  node: { endpoint: string; enclaveId: Hex; enclaveAddress: Hex; measurement: Hex };
  outputs: { role: string; contentType: string; bytes: Uint8Array }[];
  proof: WorkProofJson;
  /**
   * Always `{ok: true, reasons: []}` on return: a proof (or enclave summary) that does not commit
   * to the outputs the node lists is thrown as E_PROOF_INVALID before any output is downloaded
   * (docs/decisions/1560). Kept for callers that check it.
   */
  proofCheck: { ok: boolean; reasons: string[] };
  /** Output artifact ids, in order. */
  outputIds: Hex[];
  /** The enclave's own summary (opened from the channel response). */
  summary: Record<string, unknown>;
  /** Earlier attempts on nodes that were lost, in order: their job ids were reclaimed (or not). */
  reassignments: { jobId: Hex; enclaveId: Hex; endpoint: string; reason: string; reclaimed: boolean }[];
}

/** A job that failed in the enclave: the node failed it on chain and the escrow was reclaimed. */
export class JobFailedError extends FirnError {
  override readonly name = 'JobFailedError';
  constructor(
    code: FirnError['code'],
    message: string,
    readonly jobId: Hex,
    readonly reclaimed: boolean,
  ) {
    super(code, message, { details: { jobId, reclaimed } });
  }
}

/**
 * Fetch a proved job's result. A node that does not serve it (or serves outputs that do not hash
 * to their ids) is retried until it does, or until the job leaves Proved: verifiers check the same
 * result and dispute a withheld one (reason 19, E_RESULT_UNAVAILABLE; docs/decisions/0830), so a
 * Slashed job is reclaimed here, escrow and slashed stake, and reported as JobFailedError
 * E_RESULT_UNAVAILABLE with `reclaimed`. Also reported, without a refund, when the challenge window
 * ends with the job still Proved (the verifiers were served: see the decision's remaining gap).
 */
export async function awaitResult(
  m: Awaited<ReturnType<typeof connectToNode>>,
  jobId: Hex,
  opts: Pick<RunJobOptions, 'resultRetryMs' | 'onProgress'>,
): Promise<NodeJobResult> {
  let reason = '';
  for (;;) {
    try {
      const r = await m.api.getResult(jobId);
      // Inline outputs must be the bytes their ids name; fetched ones are checked by the caller.
      if (
        r.outputs.every(
          (o) =>
            o.sealed === undefined ||
            artifactId(new Uint8Array(Buffer.from(o.sealed, 'base64'))) === o.artifactId.toLowerCase(),
        )
      )
        return r;
      reason = 'an output does not hash to its id';
    } catch (e) {
      // The node's words (its error body is quoted capped and clean by NodeApi; anything else too).
      reason = hostText((e as Error).message, MAX_HOST_MESSAGE_CHARS);
    }
    const job = await getJob(m.clients, jobId);
    // Chain time first seen plus own elapsed time (the latest block's time may lag where blocks are
    // mined only on transactions, anvil); never the host clock, which may run ahead of the chain
    // and give up on an honest node's result at once (docs/decisions/1460).
    const now = BigInt(await m.chainClock.now());
    if (job.status === JobStatus.Slashed) {
      const reclaimed = await reclaimIfPossible(m.clients, jobId).catch(() => false);
      throw new JobFailedError(
        'E_RESULT_UNAVAILABLE',
        `the node proved the job but did not serve its result (${reason}); verifiers disputed it and the job was slashed`,
        jobId,
        reclaimed,
      );
    }
    if (job.status !== JobStatus.Proved || now >= job.challengeEndsAt)
      throw new JobFailedError(
        'E_RESULT_UNAVAILABLE',
        `the node proved the job but did not serve its result (${reason}); the job is ${JobStatus[job.status]}`,
        jobId,
        false,
      );
    opts.onProgress?.({ stage: 'awaiting-result', reason });
    await new Promise((res) => setTimeout(res, opts.resultRetryMs ?? 2000));
  }
}

/**
 * A node was lost while it held the job: unreachable, restarted (it failed the job with
 * E_ENCLAVE_UNAVAILABLE), full, or its claim lapsed. The job was reclaimed when `reclaimed`.
 */
export class NodeLostError extends FirnError {
  override readonly name = 'NodeLostError';
  constructor(
    code: FirnError['code'],
    message: string,
    readonly jobId: Hex,
    readonly reclaimed: boolean,
  ) {
    super(code, message, { details: { jobId, reclaimed } });
  }
}

/** Error codes that say "this node, now" rather than "this job": worth another node. */
const NODE_LOSS_CODES = new Set<string>([
  'E_UNAVAILABLE',
  'E_TIMEOUT',
  'E_ENCLAVE_UNAVAILABLE',
  'E_RATE_LIMITED',
]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Run one confidential job through the market: attest a node, seal and upload the inputs, post
 * the job with escrow, grant the inputs to that enclave for that job, send the encrypted request,
 * follow the encrypted progress, open the sealed outputs and verify the Work Proof off chain. A
 * job the enclave refuses rejects with its typed error (JobFailedError) after the escrow was
 * reclaimed. A node lost on the way (unreachable, restarted, full, claim lapsed) is replaced by
 * another eligible, freshly attested node, up to `maxNodes` in all, each step reported through
 * `onProgress` as `{stage: 'reassigning', …}`: the lost job is reclaimed first (after its claim
 * lapses, so it can never be paid too), then the same sealed inputs are granted to the new
 * enclave under a new job. Raises NodeLostError when every node tried was lost.
 *
 * The node's result is shape-checked (E_PARSE naming the node and field; at most 16 outputs within
 * the enclave's size bounds), then the Work Proof and the enclave's sealed summary must commit to
 * exactly the listed outputs, else E_PROOF_INVALID with nothing downloaded; only then is each
 * output fetched, capped at the sealed size the enclave's summary gives (the listed size must be
 * the same) and checked against its id (docs/decisions/1560, 1600).
 */
export async function runJob(opts: RunJobOptions): Promise<RunJobResult> {
  // A bad bound is the caller's to fix, refused before anything is sealed or posted.
  if (opts.maxOutputBytes !== undefined) parseOutputBound(opts.maxOutputBytes, 'maxOutputBytes');
  const maxNodes = Math.max(1, opts.maxNodes ?? 3);
  const kem = opts.requesterKem ?? (await generateKemKeyPair());
  // Sealed once, to the requester: every node gets the same ciphertext, only the grants differ.
  const sealed: (SealedInput & { role: string })[] = [];
  for (const i of opts.inputs)
    sealed.push({
      ...('sealed' in i ? i.sealed : await sealInput(i.bytes, i.contentType, kem.publicKey)),
      role: i.role,
    });
  const lost: RunJobResult['reassignments'] = [];
  const tried: Hex[] = [];
  for (let attempt = 1; ; attempt++) {
    let m: MarketSession;
    try {
      m = await connectToNode({
        ...opts,
        requesterKem: kem,
        // The requested node first; after a loss, any other eligible node.
        ...(attempt === 1 && opts.node !== undefined ? { node: opts.node } : { node: undefined }),
        ...(attempt === 1 && opts.enclaveId !== undefined
          ? { enclaveId: opts.enclaveId }
          : { enclaveId: undefined }),
        exclude: tried,
      } as MarketOptions);
    } catch (e) {
      if (attempt === 1 || !(e instanceof FirnError && e.code === 'E_NOT_FOUND')) throw e;
      const last = lost[lost.length - 1]!;
      throw new NodeLostError(
        'E_UNAVAILABLE',
        `node ${last.endpoint} was lost (${last.reason}) and no other eligible node is Active; the escrow was ${last.reclaimed ? 'reclaimed' : 'not reclaimed yet (firn job reclaim)'}`,
        last.jobId,
        last.reclaimed,
      );
    }
    tried.push(m.node.enclaveId);
    try {
      const r = await runOnNode(m, opts, sealed);
      return { ...r, reassignments: lost };
    } catch (e) {
      if (!(e instanceof NodeLostError)) throw e;
      lost.push({
        jobId: e.jobId,
        enclaveId: m.node.enclaveId,
        endpoint: m.node.endpoint,
        reason: `${e.code}: ${e.message}`,
        reclaimed: e.reclaimed,
      });
      if (attempt >= maxNodes) throw e;
      opts.onProgress?.({
        stage: 'reassigning',
        attempt: attempt + 1,
        maxNodes,
        from: m.node.endpoint,
        lostJobId: e.jobId,
        reclaimed: e.reclaimed,
        reason: e.code,
      });
    }
  }
}

/**
 * Chain seconds past a claim's lapse, by the SDK's own clock, after which a chain whose head did
 * not move across STALLED_NUDGES nudges is judged not advancing (decision 1475).
 */
const STALE_CHAIN_S = 20n;
/** Nudges after which, with the RPC's head unmoved each time, the chain is judged not advancing. */
const STALLED_NUDGES = 2;
/** Nudge transactions one wait may send at most (each costs gas). */
const MAX_NUDGES_PER_WAIT = 3;
/** Own time between two nudges at least, ms (a live chain makes blocks by itself meanwhile). */
const NUDGE_SPACING_MS = 5_000;
/** Reclaim attempts of a lapsed claim before the wait gives up (NodeLostError, not reclaimed). */
const MAX_RECLAIM_TRIES = 5;

/**
 * The chain the requester's RPC serves did not advance: its head stayed put across nudge
 * transactions it accepted (or its block time never reached the lapse), while the SDK's own clock
 * (decision 1460) says the job's claim lapsed long ago. Code E_CHAIN; `jobId` names the job whose escrow can be reclaimed later (through
 * another RPC, `firn job reclaim`). See docs/decisions/1475-requester-waits-end-on-chain.md.
 */
export class ChainNotAdvancingError extends FirnError {
  override readonly name = 'ChainNotAdvancingError';
  /** The RPC's origin (scheme, host, port): a path or query may hold an API key, never shown. */
  readonly rpcUrl: string;
  constructor(
    rpcUrl: string,
    readonly jobId: Hex,
    /** The head block number the RPC kept answering. */
    readonly head: bigint,
    /** The claim's lapse, unix seconds of chain time. */
    readonly lapseAt: bigint,
  ) {
    super(
      'E_CHAIN',
      `the chain the RPC at ${rpcOrigin(rpcUrl)} serves is not advancing: at block ${head} its time is still at or before chain time ${lapseAt}, when the claim on job ${jobId} lapsed, though the requester's own clock passed it and the transactions sent to make a block did not move it; the escrow can be reclaimed later (firn job reclaim ${jobId}) through an RPC that follows the chain`,
      { details: { jobId, rpcUrl: rpcOrigin(rpcUrl), head: head.toString(), lapseAt: lapseAt.toString() } },
    );
    this.rpcUrl = rpcOrigin(rpcUrl);
  }
}

/** An RPC URL's origin only: its path, query and credentials may carry an API key. */
function rpcOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'an unparsable URL';
  }
}

/**
 * The node holding `jobId` is unreachable or restarted: wait on chain until the job ends for it.
 * Proved: the node finished (it may serve the result again), so continue with it. Failed or
 * Open: reclaim (an Open job the node claimed before the reclaim is read again, decision 1822). Claimed: reconnect to its events if it comes back (followUntilLapse: never past
 * the lapse), else wait until the claim lapses (chain time past claimedAt + claimTimeout, or the
 * deadline; judged on the chain's clock, see ChainClock, never the host's) and reclaim. Raises
 * NodeLostError once reclaimed (or after MAX_RECLAIM_TRIES failed reclaims, not reclaimed);
 * returns the end event when the node came back.
 *
 * Bounded on the SDK's own clock too (decision 1475): past the lapse by that clock while the
 * RPC's block time is not, at most MAX_NUDGES_PER_WAIT nudges are sent (each receipt awaited
 * NUDGE_RECEIPT_MS at most), and once STALLED_NUDGES of them left the RPC's head where it was and
 * the clock is STALE_CHAIN_S past the lapse, ChainNotAdvancingError (E_CHAIN) names the job.
 */
export async function waitOutLostNode(
  m: MarketSession,
  jobId: Hex,
  cause: FirnError,
  opts: Pick<RunJobOptions, 'pollMs' | 'rpcUrl' | 'onProgress'>,
  follow: (signal: AbortSignal) => Promise<StreamEnd>,
  latestLapseAt: bigint,
): Promise<StreamEnd> {
  const pollMs = opts.pollMs ?? 1000;
  let nudgedAt = Number.NEGATIVE_INFINITY;
  let nudges = 0;
  let stalled = 0; // nudges after which the RPC's head had not moved
  let head = 0n;
  let reclaimTries = 0;
  for (;;) {
    const job = await getJob(m.clients, jobId);
    if (job.status === JobStatus.Proved || job.status === JobStatus.Paid) return { status: 'proved' };
    const chainNow = BigInt((await m.clients.public.getBlock()).timestamp);
    // Chain time first seen plus own elapsed time: never the host clock, which may run ahead of
    // the chain (or behind it) by any amount (docs/decisions/1460).
    const elapsedNow = BigInt(m.chainClock.observe(Number(chainNow)));
    // Never later than the deadline this requester posted, whatever the RPC reports.
    const lapseAt = minBig(minBig(job.claimedAt + job.claimTimeout, job.deadline), latestLapseAt);
    const lapsed = job.status === JobStatus.Claimed && chainNow > lapseAt;
    if (job.status === JobStatus.Claimed && !lapsed && elapsedNow > lapseAt + LAPSE_MARGIN_S) {
      // Lapsed by the chain's time as counted here but no block since: on a chain that mines only
      // on transactions (anvil) the reclaim would be judged at the last block's time. A zero-value
      // transfer to ourselves makes a block at the present time; on a live chain blocks come by
      // themselves. An RPC that takes the nudges but whose head never moves serves a chain that is
      // not advancing (or has stopped following it): give up, typed, rather than wait for ever.
      if (stalled >= STALLED_NUDGES && elapsedNow > lapseAt + STALE_CHAIN_S)
        throw new ChainNotAdvancingError(opts.rpcUrl, jobId, head, lapseAt);
      if (
        nudges < MAX_NUDGES_PER_WAIT &&
        performance.now() - nudgedAt >= Math.max(pollMs, NUDGE_SPACING_MS)
      ) {
        head = await m.clients.public.getBlockNumber({ cacheTime: 0 });
        nudgedAt = performance.now();
        nudges++;
        await nudgeChain(m.clients, NUDGE_RECEIPT_MS).catch(() => undefined);
        const after = await m.clients.public.getBlockNumber({ cacheTime: 0 }).catch(() => head);
        stalled = after > head ? 0 : stalled + 1;
        continue;
      }
      // Every nudge spent: a head that stalled, or a chain whose block time never reaches a lapse
      // the SDK's clock passed long ago (an RPC that lies about time), ends the wait too.
      if (
        nudges >= MAX_NUDGES_PER_WAIT &&
        ((stalled > 0 && elapsedNow > lapseAt + STALE_CHAIN_S) || elapsedNow > lapseAt + 10n * STALE_CHAIN_S)
      )
        throw new ChainNotAdvancingError(opts.rpcUrl, jobId, head, lapseAt);
      await sleep(pollMs);
      continue;
    }
    if (job.status === JobStatus.Failed || job.status === JobStatus.Open || lapsed) {
      const reclaimed = await reclaimIfPossible(m.clients, jobId, lapsed).catch(() => false);
      // Not reclaimed: a lapse the chain does not judge yet, or an Open job the node claimed
      // meanwhile (then it may still prove it): read the chain again rather than give it up.
      if (!reclaimed && (lapsed || job.status === JobStatus.Open) && ++reclaimTries < MAX_RECLAIM_TRIES) {
        await sleep(pollMs);
        continue;
      }
      throw new NodeLostError(cause.code, cause.message, jobId, reclaimed);
    }
    if (job.status !== JobStatus.Claimed)
      throw new JobFailedError('E_JOB_FAILED', `the job is ${JobStatus[job.status]}`, jobId, false);
    opts.onProgress?.({
      stage: 'node-lost',
      node: m.node.endpoint,
      reason: cause.code,
      claimLapsesAt: Number(lapseAt),
    });
    // The node may be back (restarted, or the network healed): its events resume where they
    // stopped, but never past the claim's lapse (a host alive around a hung enclave).
    try {
      return await followUntilLapse(m, jobId, follow, lapseAt, latestLapseAt);
    } catch (e) {
      if (!(e instanceof FirnError) || !NODE_LOSS_CODES.has(e.code)) throw e;
    }
    await sleep(pollMs);
  }
}

/** Own time a job still Open after a host-only failure is left to be claimed before it is reclaimed, ms. */
const OPEN_CLAIM_GRACE_MS = 10_000;

/**
 * How settleHostFailure reads a host's failure: how long a job still Open is left to be claimed
 * before it is reclaimed (ms), and how the error words what the node said.
 */
export interface HostFailureKind {
  openGraceMs: number;
  says: string;
}

/** A refusal of the job's submission (POST /v1/jobs) other than a node loss: the host's word alone. */
export const SUBMISSION_REFUSED: HostFailureKind = { openGraceMs: 0, says: 'refused the job' };

/** Longest text of the host's own failure message quoted in an error, characters. */
const MAX_HOST_MESSAGE_CHARS = 200;

/** A host's `end` error as quoted text: code and message, capped, control characters dropped. */
function hostFailureText(end: StreamEnd): string {
  const code = typeof end.error?.code === 'string' ? hostText(end.error.code, 40) : 'no code';
  const msg = hostText(
    typeof end.error?.message === 'string' ? end.error.message : '',
    MAX_HOST_MESSAGE_CHARS,
  );
  return msg === '' ? code : `${code}: ${msg}`;
}

/**
 * The job stream ended with a failure the enclave did not seal (`end: failed` is the host's word
 * alone): it is final only where the chain says so. Proved or Paid on chain: returns `{status:
 * 'proved'}` (the caller fetches the result). Failed or Slashed: reclaimed, then JobFailedError (or
 * NodeLostError for a code that names the node, not the job: a restart, a full node). Open: the
 * reclaim ends it (same errors); if the node claimed meanwhile, the wait goes on. Claimed: the
 * node is treated as lost (waitOutLostNode): its events are followed again, never past the
 * claim's lapse, after which the chain decides (reclaim, NodeLostError). Another end the enclave
 * did not seal goes round again after `pollMs`. A failure sealed meanwhile (`sealed()`) is
 * returned as the failed end for the caller to report. Decision 1581. `how`: the Open grace
 * (OPEN_CLAIM_GRACE_MS for a stream's end, none for a refused submission: SUBMISSION_REFUSED,
 * decision 1822) and the words the error puts in the node's mouth.
 */
export async function settleHostFailure(
  m: MarketSession,
  jobId: Hex,
  first: StreamEnd,
  opts: Pick<RunJobOptions, 'pollMs' | 'rpcUrl' | 'onProgress'>,
  follow: (signal: AbortSignal) => Promise<StreamEnd>,
  latestLapseAt: bigint,
  sealed: () => { code: FirnError['code']; message: string } | undefined,
  how: HostFailureKind = { openGraceMs: OPEN_CLAIM_GRACE_MS, says: 'says the job failed' },
): Promise<StreamEnd> {
  const said = hostFailureText(first);
  // The host's code is kept (it names the cause the node reports, e.g. an input it lacks) but only
  // once the chain has freed the job; the message says it is the node's word alone.
  const hostCode: FirnError['code'] =
    typeof first.error?.code === 'string' && /^E_[A-Z_]{1,40}$/.test(first.error.code)
      ? first.error.code
      : 'E_JOB_FAILED';
  const nodeLoss = NODE_LOSS_CODES.has(hostCode);
  const fail = (onChain: string, reclaimed: boolean): never => {
    const message = `the node ${how.says} (${said}), but the enclave did not sign it; ${onChain}, and its escrow was ${reclaimed ? 'reclaimed' : `not reclaimed yet (firn job reclaim ${jobId})`}`;
    if (nodeLoss) throw new NodeLostError(hostCode, message, jobId, reclaimed);
    throw new JobFailedError(hostCode, message, jobId, reclaimed);
  };
  let end = first;
  let openSince: number | undefined;
  for (;;) {
    if (end.status === 'proved' || sealed() !== undefined) return end;
    const job = await getJob(m.clients, jobId);
    if (job.status === JobStatus.Proved || job.status === JobStatus.Paid) return { status: 'proved' };
    if (job.status === JobStatus.Failed || job.status === JobStatus.Slashed) {
      const reclaimed = await reclaimIfPossible(m.clients, jobId).catch(() => false);
      return fail(`the chain shows the job ${JobStatus[job.status]}`, reclaimed);
    }
    if (job.status === JobStatus.Open) {
      // The node may claim it still (its end came before its claim): give it OPEN_CLAIM_GRACE_MS.
      // Then the reclaim ends it for good: the contract refuses a claim on a reclaimed job, so it
      // can never be paid while posted again elsewhere.
      openSince ??= performance.now();
      if (performance.now() - openSince < how.openGraceMs) {
        await sleep(opts.pollMs ?? 1000);
        continue;
      }
      const reclaimed = await reclaimIfPossible(m.clients, jobId).catch(() => false);
      if (reclaimed) return fail('no node claimed it on chain', true);
      // Claimed (or proved) meanwhile: read the chain again.
      await sleep(opts.pollMs ?? 1000);
      continue;
    }
    if (job.status !== JobStatus.Claimed)
      return fail(`the chain shows the job ${JobStatus[job.status] ?? job.status}`, false);
    opts.onProgress?.({ stage: 'host-failure-unsigned', reason: said.slice(0, 60) });
    const cause = new FirnError(
      hostCode,
      `the node ${how.says} (${said}), but the enclave did not sign it; the chain freed the job (failed, or its claim lapsed) before it was proved`,
    );
    end = await waitOutLostNode(m, jobId, cause, opts as RunJobOptions, follow, latestLapseAt);
    if (end.status !== 'proved' && sealed() === undefined) await sleep(opts.pollMs ?? 1000);
  }
}

/** Reads of the chain, `pollMs` apart (at most 1 s), before an `end: proved` it contradicts is judged the host's lie. */
const PROVED_CONFIRM_READS = 3;

/**
 * The job's event stream as the chain bounds it (decision 1822): the stream is the host's, and only
 * the `progress` messages in it are the enclave's (sealed on the job's channel). `follow`'s end is
 * returned as it came, except:
 * - an `end: proved` is returned only once the chain shows the job Proved or Paid (read up to
 *   PROVED_CONFIRM_READS times, `pollMs` apart, at most 1 s: the requester's RPC may lag the
 *   node's); while the chain still shows it Open or Claimed, FirnError E_UNAVAILABLE naming the
 *   node, so the caller waits on the chain as for a lost node;
 * - every error other than a node loss (E_UNAVAILABLE, E_TIMEOUT, E_ENCLAVE_UNAVAILABLE,
 *   E_RATE_LIMITED) becomes E_UNAVAILABLE naming the node and quoting what it sent (code and
 *   message, capped, control characters dropped): a refused stream, an error body worded like the
 *   enclave's, an event that does not open on the job's channel. None of them is the job's
 *   failure; the enclave's own failure comes sealed, in a `progress` message.
 */
export function chainBoundedFollow(
  m: Pick<MarketSession, 'clients' | 'node'>,
  jobId: Hex,
  follow: (signal: AbortSignal) => Promise<StreamEnd>,
  pollMs = 1000,
): (signal: AbortSignal) => Promise<StreamEnd> {
  const lost = (what: string) =>
    new FirnError('E_UNAVAILABLE', `node ${m.node.endpoint} ${what}; the chain decides the job ${jobId}`, {
      details: { jobId, endpoint: m.node.endpoint },
    });
  return async (signal) => {
    let end: StreamEnd;
    try {
      end = await follow(signal);
    } catch (e) {
      if (e instanceof FirnError && NODE_LOSS_CODES.has(e.code)) {
        // Its code and details stay (a lapse bound, a restart); its text may be the node's: quoted
        // clean and capped, said to be the node's unless it already is.
        const own = e.message.startsWith(`node ${m.node.endpoint} `);
        throw new FirnError(
          e.code,
          own
            ? hostText(e.message, 2 * MAX_HOST_MESSAGE_CHARS)
            : `node ${m.node.endpoint}: ${hostText(e.message, MAX_HOST_MESSAGE_CHARS)}`,
          { ...(e.details === undefined ? {} : { details: e.details }), cause: e },
        );
      }
      const code = e instanceof FirnError ? e.code : 'E_PARSE';
      throw lost(
        `failed the job's event stream (${hostFailureText({ status: 'failed', error: { code, message: (e as Error).message } })})`,
      );
    }
    if (end.status !== 'proved') return end;
    let status: JobStatus | undefined;
    for (let i = 0; i < PROVED_CONFIRM_READS; i++) {
      if (i > 0) await sleep(Math.min(pollMs, 1000));
      status = await getJobStatus(m.clients, jobId);
      if (status === JobStatus.Proved || status === JobStatus.Paid) return end;
      if (status !== JobStatus.Open && status !== JobStatus.Claimed) break;
    }
    throw lost(
      `ended the event stream as proved, but the chain shows the job ${JobStatus[status!] ?? status}`,
    );
  };
}

/**
 * The node did not take the job's submission (POST /v1/jobs) and said why: its word alone, about a
 * job it may have claimed meanwhile (decision 1822). A node-loss code: the job still Open is
 * reclaimed (NodeLostError; the caller may try another node), one the node claimed is waited out
 * on chain (waitOutLostNode). Any other refusal: settleHostFailure with SUBMISSION_REFUSED (no
 * grace: an Open job is reclaimed at once, so it can never be paid; Claimed is waited out; Proved
 * is returned as `{status: 'proved'}` for the caller to fetch). Raises JobFailedError or
 * NodeLostError naming the node's words as its own, with `reclaimed`.
 */
export async function settleRefusedSubmission(
  m: MarketSession,
  jobId: Hex,
  refusal: unknown,
  opts: Pick<RunJobOptions, 'pollMs' | 'rpcUrl' | 'onProgress'>,
  follow: (signal: AbortSignal) => Promise<StreamEnd>,
  latestLapseAt: bigint,
  sealed: () => { code: FirnError['code']; message: string } | undefined,
): Promise<StreamEnd> {
  const err =
    refusal instanceof FirnError ? refusal : new FirnError('E_UNAVAILABLE', (refusal as Error).message);
  if (NODE_LOSS_CODES.has(err.code)) {
    const j = await getJob(m.clients, jobId);
    if (j.status === JobStatus.Open) {
      const reclaimed = await reclaimIfPossible(m.clients, jobId).catch(() => false);
      if (reclaimed) throw new NodeLostError(err.code, err.message, jobId, true);
    }
    return waitOutLostNode(m, jobId, err, opts, follow, latestLapseAt);
  }
  return settleHostFailure(
    m,
    jobId,
    { status: 'failed', error: { code: err.code, message: err.message } },
    opts,
    follow,
    latestLapseAt,
    sealed,
    SUBMISSION_REFUSED,
  );
}

/**
 * Submit the job's request, once more after a dropped answer (E_UNAVAILABLE or E_TIMEOUT, after
 * `pollMs`): the node may have taken it, and the submission is idempotent on the node (decision
 * 1040), so asking again gives the record and never a second run. Throws what the second answer
 * (or the first refusal) raised.
 */
export async function submitWithOneRetry(
  api: Pick<MarketSession['api'], 'submitJob'>,
  body: Parameters<MarketSession['api']['submitJob']>[0],
  pollMs = 1000,
): Promise<void> {
  try {
    await api.submitJob(body);
  } catch (e) {
    if (!(e instanceof FirnError && (e.code === 'E_UNAVAILABLE' || e.code === 'E_TIMEOUT'))) throw e;
    await sleep(pollMs);
    await api.submitJob(body);
  }
}

/**
 * The enclave sealed the job's failure to this requester (`sealed`), which is final about the
 * run it made; the escrow is final only on chain (decision 1822). Failed, Open or Slashed: the
 * escrow is reclaimed and JobFailedError carries the sealed code and message. Proved or Paid (the
 * host ran the request again, in a restarted enclave): `{status: 'proved'}`, the caller fetches
 * that result. Claimed: read again up to PROVED_CONFIRM_READS times (`pollMs` apart, at most 1 s;
 * an honest node fails the job on chain before it ends the stream), then waited out as for a lost
 * node (waitOutLostNode, never past the claim's lapse), then the same. Raises JobFailedError
 * (`reclaimed` says whether the escrow came back).
 */
export async function settleSealedFailure(
  m: MarketSession,
  jobId: Hex,
  sealed: { code: FirnError['code']; message: string },
  opts: Pick<RunJobOptions, 'pollMs' | 'rpcUrl' | 'onProgress'>,
  latestLapseAt: bigint,
): Promise<StreamEnd> {
  const failed = (reclaimed: boolean): never => {
    throw new JobFailedError(sealed.code, sealed.message, jobId, reclaimed);
  };
  let status = JobStatus.Claimed;
  for (let i = 0; i < PROVED_CONFIRM_READS && status === JobStatus.Claimed; i++) {
    if (i > 0) await sleep(Math.min(opts.pollMs ?? 1000, 1000));
    status = await getJobStatus(m.clients, jobId);
  }
  if (status === JobStatus.Proved || status === JobStatus.Paid) return { status: 'proved' };
  if (status !== JobStatus.Claimed)
    return failed(await reclaimIfPossible(m.clients, jobId).catch(() => false));
  // The node keeps its claim after the enclave sealed a failure: nothing more comes from its
  // stream that matters here; wait on the chain until the node fails or proves it, or the claim lapses.
  const quiet = (signal: AbortSignal) =>
    new Promise<StreamEnd>((_, reject) => {
      if (signal.aborted) return reject(signal.reason);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  try {
    const end = await waitOutLostNode(
      m,
      jobId,
      new FirnError(
        'E_UNAVAILABLE',
        `node ${m.node.endpoint} kept its claim after the enclave sealed the job's failure`,
      ),
      opts,
      quiet,
      latestLapseAt,
    );
    if (end.status === 'proved') return end;
  } catch (e) {
    if (e instanceof NodeLostError) return failed(e.reclaimed);
    throw e;
  }
  return failed(await reclaimIfPossible(m.clients, jobId).catch(() => false));
}

/** One attempt on one attested node; NodeLostError when the node is lost on the way. */
async function runOnNode(
  m: MarketSession,
  opts: RunJobOptions,
  sealed: (SealedInput & { role: string })[],
): Promise<Omit<RunJobResult, 'reassignments'>> {
  const { clients, node, api, kem, deadlineSeconds } = m;
  for (const s of sealed) {
    try {
      await uploadSealed(api, s, 'input');
    } catch (e) {
      // Nothing is posted yet: a node that cannot take the upload is simply replaced.
      if (e instanceof FirnError && NODE_LOSS_CODES.has(e.code))
        throw new NodeLostError(e.code, e.message, '0x' as Hex, false);
      throw e;
    }
  }
  const refs = sealed.map((s) => ({ role: s.role, artifactId: s.artifactId }));
  // A fresh salt in the params (decision 1854): the posted workload hash confirms no guess of them.
  const params = withParamsSalt(opts.params);
  const { workloadHash, inputCommitment } = jobCommitments(opts.kind, params, refs);
  // The grants expire with the job: at the deadline computed before the post and posted with it,
  // never at a clock read after it, which can be a second later (decision 1653).
  const { jobId, deadline, posted } = await postJobWithDeadline(m, opts, { workloadHash, inputCommitment });
  const chainTime = Number((await clients.public.getBlock()).timestamp);
  m.chainClock.observe(chainTime);
  opts.onPosted?.(jobId, posted);

  const built = await buildJobRequest({
    jobId,
    kind: opts.kind,
    inputs: sealed.map((s) => ({ role: s.role, artifactId: s.artifactId, dataKey: s.dataKey })),
    params,
    requesterKey: opts.requesterKey,
    enclave: node,
    resultRecipient: kem.publicKey,
    domain: { chainId: opts.deployment.chainId, jobMarket: opts.deployment.jobMarket },
    grantExpiresAt: Number(deadline),
    // The chain time the grants are made at: the enclave's clock never goes below it.
    grantIssuedAt: chainTime,
    ...(opts.mutateGrant ? { mutateGrant: opts.mutateGrant } : {}),
    ...(opts.maxOutputBytes === undefined ? {} : { maxOutputBytes: opts.maxOutputBytes }),
  });
  // The enclave tells the host only an error code; the full message arrives sealed on the channel.
  let sealedError: { code: FirnError['code']; message: string } | undefined;
  let delivered = 0;
  async function onEvent(message: string): Promise<void> {
    const ev = JSON.parse(new TextDecoder().decode(await built.channel.openEvent(message))) as Record<
      string,
      unknown
    >;
    // Counted once it opened: an event the host made up does not move the resume point.
    delivered++;
    const err =
      ev.stage === 'failed' ? (ev.error as { code?: unknown; message?: unknown } | undefined) : undefined;
    if (typeof err?.code === 'string' && err.code.startsWith('E_') && typeof err.message === 'string')
      sealedError = { code: err.code as FirnError['code'], message: err.message };
    opts.onProgress?.(ev);
  }
  const reclaim = () => reclaimIfPossible(clients, jobId);
  const body = { ...built.body, inputs: refs.map((r) => r.artifactId) };
  const follow = chainBoundedFollow(
    m,
    jobId,
    (signal: AbortSignal) => api.followEvents(jobId, onEvent, { from: delivered, signal }),
    opts.pollMs,
  );
  // The claim cannot lapse before the post's block time plus the claim timeout (or the deadline).
  const earliestLapseAt =
    BigInt(chainTime) + BigInt(Math.min(opts.claimTimeoutSeconds ?? 900, deadlineSeconds));
  // The claim cannot lapse after the deadline posted: the bound of every wait, whatever the RPC
  // reports later.
  const latestLapseAt = deadline;
  // The grants (data keys wrapped to the enclave) leave with this request: re-check the node's
  // registration and allow-listed measurement at a fresh block first. Nothing was sent to the
  // node yet, so the job is Open and the reclaim ends it.
  try {
    await assertStillEligible(m.view, node, opts.policy);
  } catch (e) {
    const err = e instanceof FirnError ? e : new FirnError('E_UNAVAILABLE', (e as Error).message);
    throw new JobFailedError(err.code, err.message, jobId, await reclaim().catch(() => false));
  }
  let end: StreamEnd | undefined;
  try {
    await submitWithOneRetry(api, body, opts.pollMs);
  } catch (e) {
    // The node's word alone, about a job it may have claimed meanwhile: the chain decides.
    end = await settleRefusedSubmission(m, jobId, e, opts, follow, latestLapseAt, () => sealedError);
  }
  if (end === undefined)
    try {
      end = await followUntilLapse(m, jobId, follow, earliestLapseAt, latestLapseAt);
    } catch (e) {
      if (!(e instanceof FirnError && NODE_LOSS_CODES.has(e.code))) throw e;
      end = await waitOutLostNode(m, jobId, e, opts, follow, latestLapseAt);
    }
  if (end.status !== 'proved') {
    if (sealedError === undefined) {
      // Only the host said so: the enclave may still be running the job (decision 1581).
      end = await settleHostFailure(m, jobId, end, opts, follow, latestLapseAt, () => sealedError);
    }
    if (end.status !== 'proved') {
      // The enclave sealed the failure to this requester: final about its run; the chain decides
      // the escrow (a proof from a run the host made again is fetched).
      const se = sealedError ?? { code: 'E_JOB_FAILED' as FirnError['code'], message: 'job failed' };
      end = await settleSealedFailure(m, jobId, se, opts, latestLapseAt);
    }
  }

  const result = await awaitResult(m, jobId, opts);
  // Everything the node lists is checked before anything it lists is downloaded: the enclave's
  // own summary (sealed on the channel) and the Work Proof must both commit to exactly this list.
  const summary = await openSummary(built.channel, result, node.endpoint);
  const check = await verifyResultProof(
    clients,
    node.endpoint,
    result,
    { jobId, workloadHash, inputCommitment },
    summaryMismatch(summary, result),
  );
  const outputs: RunJobResult['outputs'] = [];
  const outputIds: Hex[] = [];
  // Each download is capped at the size the enclave sealed (its summary), not the host's word.
  for (const o of await fetchResultOutputs(api, result, summaryOutputSizes(summary))) {
    const opened = await openOutput(o.sealed, kem.privateKey);
    outputs.push({ role: o.role, contentType: opened.contentType, bytes: opened.bytes });
    outputIds.push(o.artifactId);
  }
  return {
    jobId,
    node: {
      endpoint: node.endpoint,
      enclaveId: node.enclaveId,
      enclaveAddress: node.enclaveAddress,
      measurement: node.measurement,
    },
    outputs,
    proof: result.proof,
    proofCheck: { ok: check.ok, reasons: check.reasons },
    outputIds,
    summary,
  };
}

/** Largest enclave summary (opened channel response) read, bytes. */
const MAX_SUMMARY_BYTES = 16 * 1024 * 1024;

/**
 * Open the enclave's summary of a job (the result's channel response, sealed to this requester)
 * as a JSON object. Throws E_PARSE naming the node when the result has none or it is not a JSON
 * object; the channel's own errors (E_DECRYPT, ...) when it was not sealed on this job's channel.
 */
export async function openSummary(
  channel: Pick<RequesterChannel, 'openResponse'>,
  result: NodeJobResult,
  endpoint: string,
): Promise<Record<string, unknown>> {
  if (result.response === undefined)
    throw new FirnError('E_PARSE', `node ${endpoint} answered the result without the enclave's response`, {
      details: { endpoint, field: 'response' },
    });
  const bytes = await channel.openResponse(result.response);
  let o: unknown;
  try {
    if (bytes.length > MAX_SUMMARY_BYTES) throw new Error('too large');
    o = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    o = undefined;
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw new FirnError('E_PARSE', `the enclave's summary relayed by node ${endpoint} is not a JSON object`, {
      details: { endpoint, field: 'response' },
    });
  return o as Record<string, unknown>;
}

/**
 * Reasons the enclave's own output list (its sealed summary's `outputs`: role and artifact id, in
 * order) differs from the list the host served; empty when they are the same.
 */
export function summaryMismatch(summary: Record<string, unknown>, result: NodeJobResult): string[] {
  const reported = Array.isArray(summary.outputs) ? (summary.outputs as unknown[]) : [];
  const same =
    reported.length === result.outputs.length &&
    reported.every((r, i) => {
      const x = r as { role?: unknown; artifactId?: unknown } | null;
      const o = result.outputs[i]!;
      return (
        typeof x?.artifactId === 'string' && x.artifactId.toLowerCase() === o.artifactId && x.role === o.role
      );
    });
  if (!same) return ['outputs differ from the enclave’s own summary'];
  // The sealed sizes (decision 1600; absent from an older enclave's summary): a host that lists
  // another size is refused before any download.
  const reasons: string[] = [];
  for (const [i, size] of summaryOutputSizes(summary).entries()) {
    const o = result.outputs[i]!;
    if (size !== undefined && size !== o.size)
      reasons.push(`output ${o.role} is listed as ${o.size} bytes, the enclave sealed ${size}`);
  }
  return reasons;
}
