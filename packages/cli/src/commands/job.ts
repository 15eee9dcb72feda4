import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  ChainRevertedError,
  createFirnClients,
  type FirnClients,
  type FirnJob,
  finalizeJob,
  firnJobMarketAbi,
  getJob,
  getWithdrawable,
  getNode,
  getRestriction,
  isGovernanceRestriction,
  JobStatus,
  NodeStatus,
  reclaimJob,
  withdrawCredits,
} from '@firn/chain';
import { fetchResultOutputs, NodeApi, nudgeChain, openOutput, verifyResultProof } from '@firn/client';
import { FirnError, type Hex, InvalidInputError } from '@firn/core';
import type { Command } from 'commander';
import { encodeAbiParameters, formatEther, keccak256, zeroAddress } from 'viem';
import { type ChainArgs, type ResolvedChain, requesterKeyFor, resolveChain } from '../chainArgs.ts';
import {
  findJobRecord,
  entrySentOn,
  isPendingEntry,
  type JobJournalEntry,
  journalDir,
  type PendingPostFate,
  pendingEntriesOn,
  readJobRecord,
  settlePendingEntry,
  staleJobRecord,
} from '../jobJournal.ts';
import { readKemPrivateKeyFile } from '../kemKeyFile.ts';
import { recoverResultKem } from '../resultKem.ts';
import { exitCodeOf, printError, printJson, short, table } from '../output.ts';
import { inferCommand, type InferOptions, writeFilesAtomically } from './infer.ts';
import { runTrain, type TrainOptions } from './train.ts';

/** Options every `firn job` subcommand takes. */
export interface JobArgs extends ChainArgs {
  json?: boolean;
  keyFile?: string;
}

/** One row of `firn job list --json`. */
export interface JobListRow {
  jobId: Hex;
  status: string;
  enclaveId: Hex | null;
  requester: Hex;
  /** Escrow still held, wei as a decimal string (0 once paid out or refunded). */
  escrow: string;
}

const JOB_ID = /^0x[0-9a-fA-F]{64}$/;
/** An output role `firn job result` writes as a file name (no dots: never `.`, `..` or a suffix clash). */
const FILE_ROLE = /^[a-z][a-z0-9_-]{0,31}$/;
/** `list` reads at most this many of the latest jobs (each is one RPC call). */
export const MAX_LISTED_JOBS = 1000;

function jobIdArg(v: string | undefined): Hex {
  if (v === undefined || !JOB_ID.test(v))
    throw new InvalidInputError(
      `JOBID must be 32 bytes of hex, 0x followed by 64 hex digits (got ${v ?? 'nothing'})`,
    );
  return v.toLowerCase() as Hex;
}

/**
 * The id of the market's n-th job (1-based), as FirnJobMarket.postJob derives it:
 * keccak256(abi.encode(chainid, market, n)).
 */
export function marketJobId(chainId: number, market: Hex, n: bigint): Hex {
  return keccak256(
    encodeAbiParameters(
      [{ type: 'uint256' }, { type: 'address' }, { type: 'uint256' }],
      [BigInt(chainId), market, n],
    ),
  );
}

function readerFor(chain: ResolvedChain): FirnClients {
  if (chain.deployment.jobMarket === zeroAddress)
    throw new InvalidInputError('no job market address: pass --market, --deployment or --devnet');
  return createFirnClients(chain.rpcUrl, undefined, chain.deployment, { pollingIntervalMs: 100 });
}

function row(j: FirnJob): JobListRow {
  const claimed = j.enclaveId !== `0x${'0'.repeat(64)}`;
  return {
    jobId: j.jobId,
    status: JobStatus[j.status] ?? String(j.status),
    enclaveId: claimed ? j.enclaveId : null,
    requester: j.requester as Hex,
    escrow: j.escrow.toString(),
  };
}

/** `firn job list`: the market's latest jobs (at most `limit`), newest first, optionally one requester's. */
export async function listJobs(
  chain: ResolvedChain,
  o: { requester?: string; limit?: number } = {},
): Promise<JobListRow[]> {
  const c = readerFor(chain);
  const count = await c.public.readContract({
    address: chain.deployment.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'jobCount',
  });
  const limit = BigInt(Math.min(o.limit ?? MAX_LISTED_JOBS, MAX_LISTED_JOBS));
  const rows: JobListRow[] = [];
  for (let n = count; n >= 1n && count - n < limit; n--) {
    const j = await getJob(c, marketJobId(chain.deployment.chainId, chain.deployment.jobMarket, n));
    if (o.requester && j.requester.toLowerCase() !== o.requester.toLowerCase()) continue;
    rows.push(row(j));
  }
  return rows;
}

/** What a job's state means for its requester, and what (if anything) they can do now. */
export function jobAdvice(j: FirnJob, chainNow: bigint): string {
  const lapse = j.claimedAt + j.claimTimeout;
  switch (j.status) {
    case JobStatus.Open:
      return 'nobody claimed it yet; `firn job reclaim` refunds the escrow';
    case JobStatus.Claimed:
      return chainNow > lapse || chainNow > j.deadline
        ? "the claim lapsed: `firn job reclaim` refunds the escrow (the node's bond goes to the governance treasury), `firn job retry` runs it on another node"
        : `running on ${j.enclaveId}; the claim lapses at ${new Date(Number(lapse) * 1000).toISOString()}`;
    case JobStatus.Proved:
      return chainNow >= j.challengeEndsAt
        ? 'proved, challenge window over: `firn job finalize` pays the operator (the node does it too)'
        : `proved; the challenge window ends at ${new Date(Number(j.challengeEndsAt) * 1000).toISOString()}; \`firn job result\` fetches the outputs`;
    case JobStatus.Paid:
      return 'finalized: the operator was paid';
    case JobStatus.Failed:
      return 'the node failed it: `firn job reclaim` refunds the escrow, `firn job retry` runs it again';
    case JobStatus.Slashed:
      return 'the proof was slashed: `firn job reclaim` refunds the escrow with the slashed stake';
    case JobStatus.Reclaimed:
      return 'the escrow was refunded';
    default:
      return 'no such job on this market';
  }
}

/**
 * Chain time at which a transaction sent now would be judged, unix seconds: the latest block's
 * timestamp when it is already past `due` (unix seconds; the time whose passing the caller judges),
 * else the later of it and the pending block's timestamp. The pending block is the one a reclaim
 * or finalize sent now lands in, stamped by the chain's own clock: on a chain that mines only on
 * transactions (anvil) the latest block can be minutes old while the next one is not. The host's
 * clock is never read (decisions 1460, 1541): a host clock ahead of the chain must not advise
 * "reclaim now" or send a reclaim the contract reverts. The pending block is asked for only when
 * the latest does not settle the question (anvil builds it on a copy of the state, decision 1400);
 * an RPC that has none, or fails on it, leaves the latest block's time.
 */
export async function chainNow(c: FirnClients, due: bigint): Promise<bigint> {
  const latest = (await c.public.getBlock({ blockTag: 'latest' })).timestamp;
  if (latest > due) return latest;
  const pending = await c.public
    .getBlock({ blockTag: 'pending' })
    .then((b) => b?.timestamp)
    .catch(() => undefined);
  return pending !== undefined && pending > latest ? pending : latest;
}

/** The time whose passing decides what can be done with `j` next (claim lapse or challenge end), unix seconds. */
function dueOf(j: FirnJob): bigint {
  if (j.status === JobStatus.Claimed) return minBig(j.claimedAt + j.claimTimeout, j.deadline);
  if (j.status === JobStatus.Proved) return j.challengeEndsAt - 1n;
  return 0n;
}

/**
 * A lapsed claim is judged at the block's time: where blocks come only with transactions (anvil)
 * the latest block can predate the lapse, so make one now (nudgeChain) before reclaiming.
 */
async function blockAfter(c: FirnClients, j: FirnJob): Promise<void> {
  const lapse = minBig(j.claimedAt + j.claimTimeout, j.deadline);
  if (BigInt((await c.public.getBlock()).timestamp) <= lapse) await nudgeChain(c);
}

/**
 * `firn job status JOBID`: the on-chain record, with times, and what can be done next. A post of
 * this machine whose answer was lost is settled first, as `firn job result` does (decision 1760):
 * its journal entry becomes the job's once mined; one still waiting in the pool is named in the
 * E_NOT_FOUND of a job the chain does not have yet.
 */
export async function jobStatus(chain: ResolvedChain, id: string) {
  const jobId = jobIdArg(id);
  const c = readerFor(chain);
  const stillPending = await settleLocalPost(chain, c, jobId);
  const j = await getJob(c, jobId);
  if (j.status === JobStatus.None)
    throw new FirnError(
      'E_NOT_FOUND',
      `job ${jobId} does not exist on the market ${chain.deployment.jobMarket}${stillPending === undefined ? '' : `; ${stillPending}: run this again once it is mined`}`,
    );
  const now = await chainNow(c, dueOf(j));
  let endpoint: string | null = null;
  if (j.status !== JobStatus.Open && row(j).enclaveId)
    endpoint = (await getNode(c, j.enclaveId)).endpoint || null;
  return {
    ...row(j),
    node: endpoint,
    deadline: Number(j.deadline),
    claimedAt: Number(j.claimedAt),
    claimLapsesAt: j.claimedAt > 0n ? Number(j.claimedAt + j.claimTimeout) : null,
    challengeEndsAt: j.challengeEndsAt > 0n ? Number(j.challengeEndsAt) : null,
    workUnits: j.workUnits.toString(),
    advice: jobAdvice(j, now),
  };
}

function requesterClients(chain: ResolvedChain, keyFile?: string): FirnClients {
  const key = requesterKeyFor(chain, keyFile);
  return createFirnClients(chain.rpcUrl, key, chain.deployment, { pollingIntervalMs: 100 });
}

/**
 * `firn job finalize JOBID`: conclude a proved job. After its challenge window the operator is
 * paid; before it, only a job with a finding against it can conclude, when that finding has passed
 * (the node is slashed and the requester refunded, decision 1776), and the market decides that:
 * with disputed stake the finalize is sent, and a refusal for the open window is reported as the
 * window, not as a revert. Returns the job's status after the transaction ('Paid' or 'Slashed').
 * Errors: E_CONFLICT (not Proved; window still open and no finding passed).
 */
export async function jobFinalize(chain: ResolvedChain, id: string, keyFile?: string) {
  const jobId = jobIdArg(id);
  const c = requesterClients(chain, keyFile);
  const j = await getJob(c, jobId);
  if (j.status !== JobStatus.Proved)
    throw new FirnError(
      'E_CONFLICT',
      `job ${jobId} is ${JobStatus[j.status]}, not Proved: nothing to finalize`,
    );
  const windowOpen = () =>
    new FirnError(
      'E_CONFLICT',
      `job ${jobId}'s challenge window ends at ${new Date(Number(j.challengeEndsAt) * 1000).toISOString()}; finalize after it${j.disputeStake > 0n ? ' (the finding against it has not passed)' : ''}`,
    );
  const now = await chainNow(c, dueOf(j));
  if (now < j.challengeEndsAt && j.disputeStake === 0n) throw windowOpen();
  let tx: Awaited<ReturnType<typeof finalizeJob>>;
  try {
    tx = await finalizeJob(c, jobId);
  } catch (e) {
    if (e instanceof ChainRevertedError && e.errorName === 'ChallengeWindowOpen') throw windowOpen();
    throw e;
  }
  const after = await getJob(c, jobId);
  return { jobId, status: JobStatus[after.status], tx: tx.hash };
}

/**
 * Whether the requester may reclaim `j` now (FirnJobMarket.reclaim): Open, Failed or Slashed; a
 * Claimed job whose claim lapsed (`lapsed`: its bond goes to the treasury, decision 1625); or a
 * Claimed job still running whose node governance restricted after its claim
 * (`restrictedSinceClaim`: TEE type withdrawn or measurement revoked; the whole bond goes back
 * to the node, decisions 1723, 1775). `now` is the chain's time, unix seconds. Reads the registry
 * only for a running claim; chain read errors propagate as FirnError.
 */
async function reclaimable(
  c: FirnClients,
  j: FirnJob,
  now: bigint,
): Promise<{ ok: boolean; lapsed: boolean }> {
  const lapsed = j.status === JobStatus.Claimed && (now > j.claimedAt + j.claimTimeout || now > j.deadline);
  const restricted =
    j.status === JobStatus.Claimed && !lapsed && (await restrictedSinceClaim(c, j.enclaveId));
  const ok = lapsed || restricted || [JobStatus.Open, JobStatus.Failed, JobStatus.Slashed].includes(j.status);
  return { ok, lapsed };
}

/**
 * The market's test (FirnJobMarket `_revokedSinceClaim`, decision 1775): the node's code is
 * restricted by governance (`restriction` 2 or 3, which an exit does not hide) and the node is
 * Active or Exiting, so that restriction alone stops it proving; a Slashed node's own fault already
 * did. Reads the node only when a restriction is in force.
 */
async function restrictedSinceClaim(c: FirnClients, enclaveId: Hex): Promise<boolean> {
  if (!isGovernanceRestriction(await getRestriction(c, enclaveId))) return false;
  const { status } = await getNode(c, enclaveId);
  return status === NodeStatus.Active || status === NodeStatus.Exiting;
}

/**
 * `firn job reclaim JOBID`: refund a job the requester can no longer use (Open, Failed, Slashed,
 * or Claimed with a lapsed claim) and withdraw the credit.
 */
export async function jobReclaim(chain: ResolvedChain, id: string, keyFile?: string) {
  const jobId = jobIdArg(id);
  const c = requesterClients(chain, keyFile);
  const j = await getJob(c, jobId);
  const me = c.wallet!.account!.address;
  // JOBID may be the expected id of a post this machine sent whose receipt it never saw (1665):
  // what became of that post says what there is to reclaim (decision 1685).
  if (j.status === JobStatus.None || j.requester.toLowerCase() !== me.toLowerCase())
    await refusePendingPost(c, chain, jobId);
  if (j.status === JobStatus.None) throw new FirnError('E_NOT_FOUND', `job ${jobId} does not exist`);
  if (j.requester.toLowerCase() !== me.toLowerCase())
    throw new FirnError(
      'E_FORBIDDEN',
      `job ${jobId} was posted by ${j.requester}, not by ${me} (pass the requester's --key-file)`,
    );
  if (j.status === JobStatus.Reclaimed) {
    // Reclaimed, its credit not withdrawn (an interrupt between the two, decision 1630): paid out.
    const credit = await getWithdrawable(c, 'jobMarket', me);
    if (credit > 0n) {
      const tx = await withdrawCredits(c, 'jobMarket');
      return { jobId, status: 'Reclaimed', refundedWei: credit.toString(), tx: tx.hash };
    }
  }
  const now = await chainNow(c, dueOf(j));
  const { ok, lapsed } = await reclaimable(c, j, now);
  if (!ok) throw new FirnError('E_CONFLICT', `job ${jobId} cannot be reclaimed: ${jobAdvice(j, now)}`);
  // Exactly the escrow: a lapsed claim's bond goes to the governance treasury, a restricted one's
  // back to its node, never to the requester (decisions 1625, 1723).
  const refund = j.escrow;
  if (lapsed) await blockAfter(c, j);
  const tx = await reclaimJob(c, jobId);
  await withdrawCredits(c, 'jobMarket');
  return { jobId, status: 'Reclaimed', refundedWei: refund.toString(), tx: tx.hash };
}

/**
 * When this machine's journal holds a pending entry for `jobId` (a post sent, its receipt never
 * seen: decision 1665) and the chain has no job of this requester there, settle it
 * (settlePendingEntry, decision 1685) and throw what the requester can do: the post posted another
 * job (E_CONFLICT naming it and its reclaim; the entry moved there), nothing was posted (E_NOT_FOUND:
 * no escrow was paid, the entry removed), or it still waits in the pool (E_CONFLICT: run again once
 * it is mined). Returns when there is no such entry.
 */
async function refusePendingPost(c: FirnClients, chain: ResolvedChain, jobId: Hex): Promise<void> {
  const rec = findJobRecord(jobId);
  if (rec === undefined || !isPendingEntry(rec)) return;
  const fate = await settlePendingEntry(rec, jobId, c, chain.deployment);
  const where = `job ${jobId} is the id this machine's journal expected for its postJob transaction`;
  if (fate.fate === 'posted' && fate.jobId.toLowerCase() !== jobId.toLowerCase())
    throw new FirnError(
      'E_CONFLICT',
      `${where} ${fate.posted.txHash}, which posted job ${fate.jobId} instead (another job took the id first); its local record moved there: run firn job reclaim ${fate.jobId}`,
      { details: { jobId: fate.jobId } },
    );
  if (fate.fate === 'not posted')
    throw new FirnError(
      'E_NOT_FOUND',
      `${where} ${fate.tx}, which ${fate.why}; there is nothing to reclaim, and its local record was removed`,
    );
  if (fate.fate === 'waiting')
    throw new FirnError(
      'E_CONFLICT',
      `${where} ${fate.tx}, which still waits in the pool: once it is mined, run firn job reclaim ${jobId} again (firn job list --requester shows the job it posted)`,
    );
}

/**
 * The pending entries of this machine's journal for `chain`'s market (pendingEntriesOn), settled
 * (settlePendingEntry, decision 1685): one line per entry saying what became of its post, for
 * `firn job list` to print beside the chain's rows. An entry whose chain read fails is named as
 * not checked; nothing here throws.
 */
export async function settlePendingEntries(chain: ResolvedChain): Promise<string[]> {
  const entries = pendingEntriesOn(chain.deployment);
  if (entries.length === 0) return [];
  const c = readerFor(chain);
  const lines: string[] = [];
  for (const { jobId, rec } of entries) {
    let fate: PendingPostFate;
    try {
      fate = await settlePendingEntry(rec, jobId, c, chain.deployment);
    } catch {
      lines.push(
        `local record of job ${jobId}: its postJob transaction ${rec.postTx} could not be checked now`,
      );
      continue;
    }
    if (fate.fate === 'posted')
      lines.push(
        fate.jobId.toLowerCase() === jobId.toLowerCase()
          ? `local record of job ${jobId}: its postJob transaction ${fate.posted.txHash} posted it; record completed`
          : `local record of job ${jobId}: its postJob transaction ${fate.posted.txHash} posted job ${fate.jobId} instead; record moved there`,
      );
    else if (fate.fate === 'not posted')
      lines.push(`local record of job ${jobId} removed: its postJob transaction ${fate.tx} ${fate.why}`);
    else lines.push(`job ${jobId} (expected id): its postJob transaction ${fate.tx} still waits in the pool`);
  }
  return lines;
}

/**
 * Before `firn job result|retry JOBID` read this machine's journal for `jobId`: settle the pending
 * entries (posts sent whose receipt this machine never saw, decisions 1665, 1760) that may hold
 * its record, so a job whose post lost its answer (the RPC stopped answering the send, the
 * process ended before the receipt) is found under its real id with its result key's salt. The
 * entry under `jobId` is settled when it is pending; when there is none, every pending entry on
 * this market (pendingEntriesOn, at most MAX_SETTLED_ENTRIES): a post may have got another id
 * than the one it expected. Returns a line saying what is still pending (a post waiting in the
 * pool, or one that could not be checked), else undefined. Never throws: the chain's failures
 * leave the entries as they are, named in the line.
 */
export async function settleLocalPost(
  chain: ResolvedChain,
  c: FirnClients,
  jobId: Hex,
): Promise<string | undefined> {
  let own: JobJournalEntry | undefined;
  try {
    own = findJobRecord(jobId);
  } catch {
    return undefined;
  }
  // The asked job's own entry is settled only on the chain it was sent to: on another one its
  // transaction is unknown, which says nothing of its fate there (and settling it would drop it).
  const entries =
    own === undefined
      ? pendingEntriesOn(chain.deployment)
      : isPendingEntry(own) && entrySentOn(own, chain.deployment) !== false
        ? [{ jobId, rec: own }]
        : [];
  const pendingLines: string[] = [];
  for (const e of entries) {
    try {
      const fate = await settlePendingEntry(e.rec, e.jobId, c, chain.deployment);
      if (fate.fate === 'waiting')
        pendingLines.push(
          `this machine's postJob transaction ${fate.tx} (job ${e.jobId} expected) still waits in the pool`,
        );
    } catch {
      pendingLines.push(
        `this machine's postJob transaction ${e.rec.postTx} (job ${e.jobId} expected) could not be checked now`,
      );
    }
  }
  return pendingLines.length === 0 ? undefined : pendingLines.join('; ');
}

/**
 * `firn job result JOBID --out DIR`: ask the job's node for its result (shape-checked: at most 16
 * outputs with plain role names, sizes within the enclave's bounds), verify the Work Proof
 * (registered enclave signer, node Active, measurement, on-chain commitments) commits to exactly
 * the (role, artifact id) list the node gives, and only then fetch each output, capped at its
 * listed size (bounded by the enclave's largest sealed output, ~514 MiB: this command has no job
 * channel to open the enclave's summary with, whose sealed sizes `runJob`/`runApp` cap at;
 * decisions 1600, 1651: with or without a journal entry, the listed size is the tightest bound this
 * command has) and checked against its id; an output served past its listed size or as other
 * bytes stops the command, naming what the requester can do (notServedAsListed); then write proof.json and the outputs: opened with
 * `--kem-key` (the key the job was run with, `firn train|infer --kem-key`), else with the key
 * derived again from the requester key (`--key-file`, FIRN_REQUESTER_KEY, the devnet requester or
 * the key the journal names) and the salt the job journal holds for a job this machine posted
 * without `--kem-key` (decision 1630), else still sealed (`<role>.sealed`). Nothing is written unless every check passed. Errors: E_PARSE (a malformed
 * answer, naming the node and field), E_PROOF_INVALID (nothing downloaded), E_ARTIFACT_TAMPERED,
 * E_TOO_LARGE, E_CONFLICT (not proved, with the job's advice, `firn job retry` for an Open or
 * Failed job posted from here, and a post of this machine still pending; --out exists). This
 * machine's pending posts are settled first (settleLocalPost, decision 1760), so a post whose send
 * lost its answer is found under the job's id.
 */
export async function jobResult(
  chain: ResolvedChain,
  id: string,
  o: { out: string; kemKey?: string; keyFile?: string },
) {
  const jobId = jobIdArg(id);
  const out = resolve(o.out);
  if (existsSync(out)) throw new FirnError('E_CONFLICT', `${out} already exists; pass a new --out directory`);
  const kemKey = o.kemKey ? readKemPrivateKeyFile(o.kemKey, '--kem-key') : undefined;
  try {
    return await fetchAndWriteResult(chain, jobId, out, kemKey, o.keyFile);
  } finally {
    kemKey?.fill(0);
  }
}

/**
 * Without --kem-key: the private result key of a job posted from this machine without one, derived
 * again from the requester key and the salt in the job journal (decision 1630); `key` undefined
 * when the journal has no such record (the outputs are then written sealed, as before) or when
 * its record is not this chain's job `j` (staleJobRecord, decision 1650: a restarted devnet reuses
 * job ids), then with `ignored` saying why. E_INVALID_INPUT naming --key-file when no requester
 * key is at hand or it is not the one the job was posted with. `c` reads the chain (one block),
 * `j` is the job as the chain has it. The caller zeroes the returned key once done.
 */
export async function journalResultKey(
  chain: ResolvedChain,
  c: FirnClients,
  j: FirnJob,
  jobId: Hex,
  keyFile?: string,
): Promise<{ key?: Uint8Array; ignored?: string }> {
  const rec = findJobRecord(jobId);
  if (rec?.resultKemSalt === undefined || rec.resultKemPublicKey === undefined) return {};
  const stale = await staleJobRecord(rec, jobId, c, chain.deployment, j.requester);
  if (stale !== undefined) return { ignored: `${stale}; it was not used` };
  let requesterKey: Hex;
  try {
    const recorded = rec.options['keyFile'];
    // The journal's path is data from a file anyone with write access to $FIRN_HOME can change:
    // read only a small regular file there (never a FIFO, a device or a large file).
    if (keyFile === undefined && recorded !== undefined) {
      const st = typeof recorded === 'string' ? statSync(recorded, { throwIfNoEntry: false }) : undefined;
      if (st === undefined || !st.isFile() || st.size > 4096)
        throw new InvalidInputError(
          `the key file its journal entry names (${String(recorded)}) is not a key file`,
        );
    }
    requesterKey = requesterKeyFor(chain, keyFile ?? (recorded as string | undefined));
  } catch (e) {
    throw new FirnError(
      'E_INVALID_INPUT',
      `job ${jobId}'s result is sealed to a key derived from its requester key: pass that key with --key-file (or FIRN_REQUESTER_KEY), or --kem-key: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
  const kem = recoverResultKem(
    requesterKey,
    { resultKemSalt: rec.resultKemSalt, resultKemPublicKey: rec.resultKemPublicKey },
    jobId,
    '--key-file',
  );
  return { key: kem.privateKey };
}

async function fetchAndWriteResult(
  chain: ResolvedChain,
  jobId: Hex,
  out: string,
  kemKey: Uint8Array | undefined,
  keyFile: string | undefined,
) {
  const c = readerFor(chain);
  // A post of this machine whose answer was lost is completed first (decision 1760).
  const stillPending = await settleLocalPost(chain, c, jobId);
  const j = await getJob(c, jobId);
  if (j.status !== JobStatus.Proved && j.status !== JobStatus.Paid) {
    let local: JobJournalEntry | undefined;
    try {
      local = j.status === JobStatus.None ? undefined : findJobRecord(jobId);
    } catch {
      // An unreadable entry only leaves the retry unnamed.
    }
    const again =
      local !== undefined && local.command !== 'run' && [JobStatus.Open, JobStatus.Failed].includes(j.status)
        ? `; \`firn job retry ${jobId}\` reclaims it and runs the same command again on a node`
        : '';
    throw new FirnError(
      'E_CONFLICT',
      `job ${jobId} is ${JobStatus[j.status]}: it has no result (${jobAdvice(j, await chainNow(c, dueOf(j)))}${again})${stillPending === undefined ? '' : `; ${stillPending}: run this again once it is mined`}`,
    );
  }
  // The journal entry is used only once the chain shows it is this job's (decision 1650).
  const derived = kemKey ? {} : await journalResultKey(chain, c, j, jobId, keyFile);
  const kem = kemKey ?? derived.key;
  try {
    // Sealed outputs are kept either way; the user is told whether a key can still open them.
    const sealedWhy =
      kem !== undefined
        ? undefined
        : derived.ignored !== undefined
          ? 'pass --kem-key (or the --key-file it was posted with) to open them'
          : `the job journal here (${journalDir()}) has no entry for this job: if it was posted without --kem-key, its result key's salt is lost and these outputs can no longer be opened; if it was posted with --kem-key FILE, pass that file`;
    return {
      ...(await fetchVerifiedResult(c, j, jobId, out, kem)),
      ...(derived.ignored === undefined ? {} : { journal: derived.ignored }),
      ...(sealedWhy === undefined ? {} : { sealedWhy }),
    };
  } finally {
    derived.key?.fill(0);
  }
}

async function fetchVerifiedResult(
  c: FirnClients,
  j: FirnJob,
  jobId: Hex,
  out: string,
  kem: Uint8Array | undefined,
) {
  const node = await getNode(c, j.enclaveId);
  if (!node.endpoint)
    throw new FirnError('E_NOT_FOUND', `node ${j.enclaveId} has no endpoint in the registry`);
  const api = new NodeApi(node.endpoint);
  // The node's answer is shape-checked (at most 16 outputs, sizes within the enclave's bounds;
  // E_PARSE naming the node and the field), then the proof is checked against the list it gives,
  // and only then is anything downloaded, each output capped at its listed size.
  const r = await api.getResult(jobId);
  const seen = new Set<string>();
  for (const [i, x] of r.outputs.entries()) {
    // Roles become file names here: plain names only, each once.
    if (!FILE_ROLE.test(x.role) || seen.has(x.role))
      throw new FirnError(
        'E_PARSE',
        `node ${node.endpoint} lists output ${i} with role ${JSON.stringify(x.role)}, ${seen.has(x.role) ? 'twice' : 'not a plain file name'}`,
        { details: { endpoint: node.endpoint, field: `outputs.${i}.role` } },
      );
    seen.add(x.role);
  }
  await verifyResultProof(c, node.endpoint, r, { jobId });
  const files: { name: string; bytes: Uint8Array | string }[] = [];
  // Capped at each output's listed size: without the job's channel this command cannot open the
  // enclave's summary (its sealed sizes), and the proof commits to hashes, not sizes (1600, 1651).
  const fetched = await fetchResultOutputs(api, r).catch((e: unknown) => {
    throw notServedAsListed(e, node.endpoint, jobId);
  });
  for (const x of fetched) {
    if (kem) {
      const opened = await openOutput(x.sealed, kem);
      files.push({ name: x.role, bytes: opened.bytes });
    } else files.push({ name: `${x.role}.sealed`, bytes: x.sealed });
  }
  mkdirSync(out, { recursive: true, mode: 0o700 });
  // All or nothing, through temp files that name their writer (decision 1542): a kill mid-write
  // leaves no partial output under its final name, and the next write here removes what it left.
  writeFilesAtomically(
    [
      ...files.map((f) => ({ path: join(out, f.name), bytes: f.bytes })),
      { path: join(out, 'proof.json'), bytes: `${JSON.stringify(r.proof, null, 2)}\n` },
    ],
    { recover: `run firn job result ${jobId} again with a new --out` },
  );
  return {
    jobId,
    node: node.endpoint,
    dir: out,
    files: [...files.map((f) => f.name), 'proof.json'],
    opened: !!kem,
  };
}

/**
 * A download `firn job result` cannot complete because the node serves an output other than it
 * listed (E_TOO_LARGE: past its listed size; E_ARTIFACT_TAMPERED: other bytes or fewer), with what
 * the requester can do: nothing was written, the listed size is the only bound this command has
 * (decision 1651), and a result the node does not serve is disputed by verifiers, after which the
 * escrow can be reclaimed. Other errors are returned as they are. Keeps code, details and cause.
 */
export function notServedAsListed(e: unknown, endpoint: string, jobId: Hex): unknown {
  if (!(e instanceof FirnError) || (e.code !== 'E_TOO_LARGE' && e.code !== 'E_ARTIFACT_TAMPERED')) return e;
  return new FirnError(
    e.code,
    `${e.message}. Nothing was written. The Work Proof commits to each output's hash, not its size, and firn job result has no channel to the enclave's own summary, so the size node ${endpoint} lists is the only bound there is: this node does not serve the output it listed, and its result cannot be fetched from it. Try again later; verifiers dispute a result its node does not serve, and once \`firn job status ${jobId}\` shows the job Slashed, \`firn job reclaim ${jobId}\` refunds the escrow`,
    { cause: e, ...(e.details === undefined ? {} : { details: e.details }) },
  );
}

/**
 * `firn job retry JOBID`: run a job posted from this machine again (same command, same files and
 * flags, from the local job record; this machine's pending posts are settled first, so a post whose
 * send lost its answer has its record under JOBID: settleLocalPost, decision 1760) on another node, after reclaiming the old job when it can be
 * (Open, Failed, Slashed, or a lapsed claim) and withdrawing the requester's credit in the job
 * market (the reclaimed escrow, or one a reclaim left there before, decision 1652): the money is
 * back in the requester's account before the new job's escrow is paid, and stderr says how much;
 * a withdraw that fails names `firn job reclaim JOBID`, which pays the credit out later. Refuses a
 * job that is running (claim valid), proved or paid, naming what to do instead, and a record that
 * is not this chain's job JOBID (E_CONFLICT, staleJobRecord: a restarted devnet reuses job ids,
 * decision 1650) before anything is sent. Returns the new command's exit code.
 */
export async function jobRetry(
  chain: ResolvedChain,
  id: string,
  o: { keyFile?: string; json?: boolean } & ChainArgs,
  io: { stdout: NodeJS.WritableStream & { isTTY?: boolean }; stderr: NodeJS.WritableStream },
): Promise<number> {
  const jobId = jobIdArg(id);
  // A post of this machine whose answer was lost is completed first (decision 1760).
  await settleLocalPost(chain, readerFor(chain), jobId);
  const rec = readJobRecord(jobId);
  if (rec.command === 'run')
    throw new FirnError(
      'E_CONFLICT',
      `job ${jobId} was posted by firn run, which retry does not repeat (its other owners grant again): run the same firn run again`,
    );
  const c = requesterClients(chain, o.keyFile ?? (rec.options['keyFile'] as string | undefined));
  const j = await getJob(c, jobId);
  const stale = await staleJobRecord(rec, jobId, c, chain.deployment, j.requester);
  if (stale !== undefined)
    throw new FirnError(
      'E_CONFLICT',
      `${stale}: retry would reclaim and repeat a job it does not know; nothing was sent. Run the ${rec.command} command again instead`,
    );
  const now = await chainNow(c, dueOf(j));
  const { ok, lapsed } = await reclaimable(c, j, now);
  if (ok) {
    if (lapsed) await blockAfter(c, j);
    await reclaimJob(c, jobId);
    io.stderr.write(`job ${jobId} reclaimed: ${formatEther(j.escrow)} ETH of escrow credited back\n`);
  } else if (j.status !== JobStatus.Reclaimed)
    throw new FirnError('E_CONFLICT', `job ${jobId} is not to be retried: ${jobAdvice(j, now)}`);
  await withdrawLeftCredit(c, jobId, io.stderr);
  // The lost node is not asked again; any other eligible node is chosen.
  // The chain is the one this command was given (--rpc, FIRN_RPC_URL, --devnet, --deployment):
  // the journal keeps no RPC URL's credentials (decision 1686), and a redacted --also-rpc is dropped.
  const {
    node: _node,
    rpc: _rpc,
    devnet: _devnet,
    deployment: _deployment,
    market: _market,
    alsoRpc,
    ...kept
  } = rec.options as Record<string, unknown> & { node?: string; alsoRpc?: unknown };
  const extra = Array.isArray(alsoRpc)
    ? alsoRpc.filter((u) => typeof u === 'string' && !u.includes('***'))
    : [];
  const options = {
    ...kept,
    ...(extra.length > 0 ? { alsoRpc: extra } : {}),
    ...(o.rpc !== undefined ? { rpc: o.rpc } : {}),
    ...(o.devnet !== undefined ? { devnet: o.devnet } : {}),
    ...(o.deployment !== undefined ? { deployment: o.deployment } : {}),
    ...(o.market !== undefined ? { market: o.market } : {}),
  };
  const json = o.json ?? false;
  if (rec.command === 'train')
    return runTrain(
      { ...(options as unknown as TrainOptions), json },
      {
        runJob: (await import('@firn/client')).runJob,
        stdout: io.stdout,
        stderr: io.stderr,
      },
    );
  const r = await inferCommand({ ...(options as unknown as InferOptions) }, (l) => {
    if (!json) io.stderr.write(`${l}\n`);
  });
  if (json) io.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else io.stdout.write(`job ${r.jobId} on ${r.node}: outputs written; proof verified\n`);
  return 0;
}

/**
 * Withdraw the requester's pull credit in the job market (a reclaimed escrow, decision 1652),
 * saying on `say` what was paid out; a credit of zero sends nothing. A withdraw that fails is
 * reported with the command that pays the credit out later (`firn job reclaim JOBID`), not thrown:
 * the credit stays the requester's in the contract. Returns the wei withdrawn.
 */
async function withdrawLeftCredit(c: FirnClients, jobId: Hex, say: NodeJS.WritableStream): Promise<bigint> {
  const me = c.wallet!.account!.address;
  const credit = await getWithdrawable(c, 'jobMarket', me);
  if (credit === 0n) return 0n;
  try {
    await withdrawCredits(c, 'jobMarket');
  } catch (e) {
    say.write(
      `warning: ${formatEther(credit)} ETH stays credited to ${me} in the job market (withdraw failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}); \`firn job reclaim ${jobId}\` withdraws it\n`,
    );
    return 0n;
  }
  say.write(`withdrew ${formatEther(credit)} ETH of credit from the job market to ${me}\n`);
  return credit;
}

export function renderJobTable(rows: JobListRow[]): string {
  return table(
    ['JOB ID', 'STATUS', 'ENCLAVE ID', 'REQUESTER', 'ESCROW (ETH)'],
    rows.map((r) => [
      short(r.jobId),
      r.status,
      r.enclaveId ? short(r.enclaveId) : '-',
      short(r.requester, 6),
      formatEther(BigInt(r.escrow)),
    ]),
  );
}

function chainOptions(cmd: Command): Command {
  return cmd
    .option('--devnet <file>', 'devnet state file (RPC, contracts, requester account)')
    .option('--deployment <file>', 'deployment JSON')
    .option('--rpc <url>', 'JSON-RPC URL')
    .option('--market <address>', 'job market contract')
    .option('--json', 'print JSON (errors too)');
}

export function registerJob(program: Command): void {
  const job = program
    .command('job')
    .description('the lifecycle of market jobs: list, status, result, finalize, reclaim, retry');
  const run =
    <R>(f: (chain: ResolvedChain) => Promise<R>, render: (r: R) => string, id?: string) =>
    async (o: JobArgs): Promise<void> => {
      try {
        // A malformed JOBID is named before any network call.
        if (id !== undefined) jobIdArg(id);
        const chain = await resolveChain(o);
        const r = await f(chain);
        if (o.json) printJson(r);
        else process.stdout.write(`${render(r)}\n`);
      } catch (e) {
        printError(e, o.json === true);
        process.exitCode = exitCodeOf(e);
      }
    };
  chainOptions(
    job
      .command('list')
      .description(
        "the latest jobs on the market, newest first; this machine's pending posts there are settled first (stderr)",
      ),
  )
    .option('--requester <address>', 'only jobs posted by this address')
    .option('--limit <n>', `at most this many of the latest jobs (max ${MAX_LISTED_JOBS})`, '100')
    .action((o: JobArgs & { requester?: string; limit: string }) =>
      run(
        async (chain) => {
          const limit = Number(o.limit);
          if (!Number.isSafeInteger(limit) || limit < 1)
            throw new InvalidInputError(`--limit must be a positive integer (got ${o.limit})`);
          // This machine's pending posts on this market first: their entries follow the chain.
          for (const line of await settlePendingEntries(chain)) process.stderr.write(`${line}\n`);
          return listJobs(chain, { ...(o.requester ? { requester: o.requester } : {}), limit });
        },
        (r) => (r.length === 0 ? 'no jobs' : renderJobTable(r)),
      )(o),
    );
  chainOptions(job.command('status <jobId>').description('a job on chain, and what can be done next')).action(
    (id: string, o: JobArgs) =>
      run(
        (chain) => jobStatus(chain, id),
        (r) => [`job ${r.jobId}: ${r.status}${r.node ? ` on ${r.node}` : ''}`, `  ${r.advice}`].join('\n'),
        id,
      )(o),
  );
  chainOptions(
    job.command('result <jobId>').description("fetch a proved job's outputs and Work Proof from its node"),
  )
    .requiredOption('--out <dir>', 'new directory for proof.json and the outputs')
    .option(
      '--kem-key <file>',
      'the KEM key file the job ran with (firn artifact keygen); else the key derived from the requester key (jobs posted from this machine), else outputs stay sealed',
    )
    .option(
      '--key-file <file>',
      'the requester key the job was posted with (else FIRN_REQUESTER_KEY, the devnet requester, or the one it used)',
    )
    .action((id: string, o: JobArgs & { out: string; kemKey?: string }) =>
      run(
        (chain) =>
          jobResult(chain, id, {
            out: o.out,
            ...(o.kemKey ? { kemKey: o.kemKey } : {}),
            ...(o.keyFile ? { keyFile: o.keyFile } : {}),
          }),
        (r) =>
          [
            ...(r.journal === undefined ? [] : [`note: ${r.journal}`]),
            `wrote ${r.files.join(', ')} to ${r.dir} (proof verified${r.opened ? '' : `; outputs still sealed: ${r.sealedWhy ?? 'pass --kem-key to open them'}`})`,
          ].join('\n'),
        id,
      )(o),
    );
  chainOptions(
    job
      .command('finalize <jobId>')
      .description(
        'pay the operator of a proved job after its challenge window (or conclude a passed finding)',
      ),
  )
    .option('--key-file <file>', 'account paying the gas (else FIRN_REQUESTER_KEY, or the devnet requester)')
    .action((id: string, o: JobArgs) =>
      run(
        (chain) => jobFinalize(chain, id, o.keyFile),
        (r) =>
          r.status === 'Slashed'
            ? `job ${r.jobId} concluded: the finding against it passed, the node was slashed and your escrow is refundable (firn job reclaim)`
            : `job ${r.jobId} finalized: operator paid`,
        id,
      )(o),
    );
  chainOptions(
    job
      .command('reclaim <jobId>')
      .description('refund a job you can no longer use (open, failed, slashed, lapsed claim)'),
  )
    .option('--key-file <file>', 'the requester key (else FIRN_REQUESTER_KEY, or the devnet requester)')
    .action((id: string, o: JobArgs) =>
      run(
        (chain) => jobReclaim(chain, id, o.keyFile),
        (r) => `job ${r.jobId} reclaimed: ${formatEther(BigInt(r.refundedWei))} ETH refunded`,
        id,
      )(o),
    );
  chainOptions(
    job.command('retry <jobId>').description('run a job posted from this machine again on another node'),
  )
    .option('--key-file <file>', 'the requester key (else the one the job used)')
    .action(async (id: string, o: JobArgs) => {
      try {
        const chain = await resolveChain(o);
        process.exitCode = await jobRetry(chain, id, o, { stdout: process.stdout, stderr: process.stderr });
      } catch (e) {
        printError(e, o.json === true);
        process.exitCode = exitCodeOf(e);
      }
    });
}

/** The smaller of two bigints (Math.min takes numbers only). */
function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
