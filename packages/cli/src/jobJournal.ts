import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type FirnClients, type FirnDeployment, firnJobMarketAbi } from '@firn/chain';
import type { JobPostedAt, PostJobSent } from '@firn/client';
import { FirnError, type Hex, TooLargeError } from '@firn/core';
import {
  BlockNotFoundError,
  parseEventLogs,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError,
} from 'viem';
import type { JobInterruptGuard } from './jobInterrupt.ts';

/**
 * The requester's local record of the jobs `firn train` and `firn infer` posted, so that
 * `firn job retry JOBID` can run the same command again on another node. It holds the command and
 * its options (file paths, flags), never file contents, keys or anything derived from the data:
 * the inputs are read again, sealed again and granted to the new node at retry time. Without
 * `--kem-key` it also holds the salt (and public key) of the job's result key, derived from the
 * requester key (resultKem.ts, decision 1630): not secret, and what `firn job result` needs to
 * open the result after the posting process was interrupted; never the private key.
 * Each entry names the chain facts of its job's post (`chain`): a job id repeats on a fresh chain
 * with the same deployment (a restarted devnet), and an entry is used for a job only where those
 * facts hold on the chain asked (checkJobRecord, decision 1650).
 * Location: `$FIRN_HOME/jobs/<jobId>.json` (default `~/.firn`), owner-only.
 */
export interface JobJournalEntry {
  jobId: Hex;
  command: 'train' | 'infer' | 'run';
  /** The command's options as parsed (paths resolved to absolute ones). */
  options: Record<string, unknown>;
  /** Unix seconds (local clock) when the job was posted. */
  postedAt: number;
  /** The job this one replaced (a retry or a reassignment), if any. */
  replaces?: Hex;
  /** Salt of the job's derived result KEM key, 0x + 64 hex (absent with --kem-key). */
  resultKemSalt?: Hex;
  /** The derived result KEM public key, 0x + 64 hex (absent with --kem-key). */
  resultKemPublicKey?: Hex;
  /** Where the job was posted (absent in entries written before decision 1650). */
  chain?: JobChainFacts;
  /**
   * The postJob transaction, while its receipt is not in (decision 1665): the entry is written
   * under the job id the simulation gave as soon as the transaction is sent, so an interrupted
   * post is on record; the receipt then confirms the id (or the entry moves to the real one).
   */
  postTx?: Hex;
  /**
   * Every postJob transaction sent for the post while it is pending: the first and each resend or
   * re-price at the same nonce (either may be the one mined). `postTx` is the last of them.
   */
  postTxs?: Hex[];
  /**
   * The chain the post was sent to (chain id, job market, requester), in every entry `firn
   * infer|train|run` write from decision 1685 on: what places a pending entry (no `chain` yet) on
   * a chain, since the journal never holds the RPC URL's credentials.
   */
  sentOn?: { chainId: number; jobMarket: Hex; requester: Hex };
}

/**
 * The chain facts a journal entry is bound to (decision 1650): the chain and market the job was
 * posted on, the requester address that posted it, and its post transaction and block. The block
 * hash is what tells a job from another one with the same id on a fresh chain.
 */
export interface JobChainFacts {
  chainId: number;
  /** The job market contract, 0x + 40 hex. */
  jobMarket: Hex;
  /** The account that posted the job, 0x + 40 hex. */
  requester: Hex;
  /** The postJob transaction, 0x + 64 hex. */
  postTx: Hex;
  /** The block it was mined in: number (decimal string) and hash (0x + 64 hex). */
  postBlock: string;
  postBlockHash: Hex;
}

/** The chain facts of a job posted on `deployment` by `requester` (recordJob's `chain`). */
export function jobChainFacts(
  deployment: FirnDeployment,
  requester: Hex,
  posted: JobPostedAt,
): JobChainFacts {
  return {
    chainId: deployment.chainId,
    jobMarket: deployment.jobMarket,
    requester,
    postTx: posted.txHash,
    postBlock: posted.blockNumber.toString(),
    postBlockHash: posted.blockHash,
  };
}

/** Options never written to the journal (none is secret today; this keeps it so). */
const NEVER_RECORDED = new Set(['json']);

export function journalDir(): string {
  return join(process.env['FIRN_HOME'] ?? join(homedir(), '.firn'), 'jobs');
}

const JOB_ID = /^0x[0-9a-fA-F]{64}$/;

/**
 * Write `text` to `file` (mode 0600, `flag` 'w' or 'wx') and fsync it and its folder, so the entry
 * survives a crash or power loss the moment this returns (decision 1747: a salt that a paid job's
 * result depends on is on disk before the escrow is sent). Throws the file-system error.
 */
function writeDurably(file: string, text: string, flag: 'w' | 'wx'): void {
  const fd = openSync(file, flag, 0o600);
  try {
    const b = Buffer.from(text, 'utf8');
    for (let o = 0; o < b.length; ) o += writeSync(fd, b, o, b.length - o);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(file, 0o600);
  const dir = openSync(join(file, '..'), 'r');
  try {
    fsyncSync(dir);
  } catch {
    // Some file systems (and Windows) cannot fsync a folder; the file itself is synced.
  } finally {
    closeSync(dir);
  }
}

/**
 * Record a posted job, written and fsynced (writeDurably); false when it could not be written (the
 * caller says what is then lost). A command whose result key is derived has already made sure the
 * journal can be written before paying (reserveResultKey).
 */
export function recordJob(entry: JobJournalEntry, ours: readonly Hex[] = []): boolean {
  // An entry for a sent post (its id only expected) never replaces another run's entry there; it
  // replaces only a pending entry of the same post (`ours`: its hashes, a re-price adds one).
  const write = (flag: 'w' | 'wx'): void => {
    const dir = journalDir();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const options = Object.fromEntries(Object.entries(entry.options).filter(([k]) => !NEVER_RECORDED.has(k)));
    const file = join(dir, `${entry.jobId.toLowerCase()}.json`);
    writeDurably(file, `${JSON.stringify({ ...entry, options }, null, 2)}\n`, flag);
  };
  try {
    if (entry.postTx === undefined) write('w');
    else
      try {
        write('wx');
      } catch (e) {
        if ((e as { code?: string }).code !== 'EEXIST' || !isOurs(findJobRecord(entry.jobId), ours)) throw e;
        write('w');
      }
    return true;
  } catch {
    // The job runs regardless; only `firn job retry` of it will say there is no record.
    return false;
  }
}

/**
 * The file that keeps a derived result key's salt from before the post until the job's own entry
 * holds it: `<journalDir>/result-key-<first 16 hex digits of the salt>.json` (the salt is not
 * secret, decision 1630).
 */
export function resultKeyReservationFile(resultKem: { resultKemSalt: Hex }): string {
  return join(journalDir(), `result-key-${resultKem.resultKemSalt.slice(2, 18).toLowerCase()}.json`);
}

/**
 * Before any escrow is sent (decision 1747): write and fsync the derived result key's salt and
 * public key (with the command and its options) to resultKeyReservationFile, proving the journal
 * can be written. Without it the result of a paid job could never be opened, so a failure refuses
 * the command: E_INVALID_INPUT (exit 3) naming FIRN_HOME, the path and the file-system error, and
 * the way out (`kemFlag`: the command's own key-file flag). Returns the file's path; the caller
 * removes it (releaseResultKey) once the job's entry is written, or when nothing was posted.
 */
export function reserveResultKey(o: {
  command: JobJournalEntry['command'];
  options: Record<string, unknown>;
  resultKem: { resultKemSalt: Hex; resultKemPublicKey: Hex };
  kemFlag: string;
}): string {
  const file = resultKeyReservationFile(o.resultKem);
  try {
    mkdirSync(journalDir(), { recursive: true, mode: 0o700 });
    const options = Object.fromEntries(Object.entries(o.options).filter(([k]) => !NEVER_RECORDED.has(k)));
    writeDurably(
      file,
      `${JSON.stringify({ command: o.command, options, postedAt: Math.floor(Date.now() / 1000), ...o.resultKem }, null, 2)}\n`,
      'wx',
    );
    return file;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const home = process.env['FIRN_HOME'];
    throw new FirnError(
      'E_INVALID_INPUT',
      `${home === undefined ? `the job journal (${journalDir()}, under your home folder; set FIRN_HOME to choose another)` : `FIRN_HOME ${home}`} cannot be written: ${file}${typeof code === 'string' ? ` (${code})` : ''}. The result key's salt must be kept there before the job is paid for, or its result could never be opened; no job was sent and nothing was paid. Make it a folder you can write, or pass ${o.kemFlag} FILE (a key from firn artifact keygen)`,
      { cause: e },
    );
  }
}

/** Remove a reservation reserveResultKey wrote (best effort: a leftover only holds a non-secret salt). */
export function releaseResultKey(file: string): void {
  rmSync(file, { force: true });
}

/** Whether `rec` is a pending entry written for one of the transactions `hashes`. */
function isOurs(rec: JobJournalEntry | undefined, hashes: readonly Hex[]): boolean {
  const mine = new Set(hashes.map((h) => h.toLowerCase()));
  return typeof rec?.postTx === 'string' && mine.has(rec.postTx.toLowerCase());
}

/**
 * Remove the pending entry of `jobId` written for the sent post `postTx` (one hash, or every hash
 * of the post: the first send and its re-prices), best effort, once its receipt named another job
 * or its transaction was never mined: only while the entry there is still that post's (another
 * run's entry for the id stays). A malformed id, a missing or unreadable entry is ignored.
 */
export function forgetJob(jobId: Hex, postTx: Hex | readonly Hex[]): void {
  try {
    if (!isOurs(findJobRecord(jobId), typeof postTx === 'string' ? [postTx] : postTx)) return;
    rmSync(join(journalDir(), `${jobId.toLowerCase()}.json`), { force: true });
  } catch {
    // Nothing of ours to remove.
  }
}

/** Largest journal entry read (an entry is a few KiB: options and paths). */
const MAX_RECORD_BYTES = 256 * 1024;

/**
 * The record of a job, or undefined when there is none in journalDir(). E_INVALID_INPUT for a
 * malformed JOBID, E_TOO_LARGE for a file over 256 KiB, E_PARSE for a file that is not a record.
 */
export function findJobRecord(jobId: string): JobJournalEntry | undefined {
  if (!JOB_ID.test(jobId))
    throw new FirnError('E_INVALID_INPUT', `JOBID must be 32 bytes of hex (got ${jobId})`);
  const file = join(journalDir(), `${jobId.toLowerCase()}.json`);
  let text: string;
  try {
    const size = statSync(file).size;
    if (size > MAX_RECORD_BYTES) throw new TooLargeError(file, size, MAX_RECORD_BYTES);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof TooLargeError) throw e;
    return undefined;
  }
  let o: JobJournalEntry;
  try {
    o = JSON.parse(text) as JobJournalEntry;
  } catch {
    throw new FirnError('E_PARSE', `${file} is not a firn job record (not JSON)`);
  }
  if (
    typeof o !== 'object' ||
    o === null ||
    (o.command !== 'train' && o.command !== 'infer' && o.command !== 'run') ||
    typeof o.options !== 'object' ||
    o.options === null
  )
    throw new FirnError('E_PARSE', `${file} is not a firn job record`);
  return o;
}

const HASH = /^0x[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/**
 * Why the journal entry `rec` is not the record of job `jobId` on the chain `c` reads
 * (`deployment`: its chain id and market), or undefined when it is. Checked (decision 1650): the
 * chain id and market the entry names are these; the chain has the entry's post block, with the
 * hash the entry names (a fresh chain that reused the id has another block there, or none yet);
 * and the job's on-chain requester is the entry's. An entry without chain facts (written before
 * 1650) cannot be told from an earlier chain's, so it is refused too, saying so. Throws only the
 * RPC's errors (the block read); `requester` is the job's on-chain requester.
 */
export async function staleJobRecord(
  rec: JobJournalEntry,
  jobId: Hex,
  c: Pick<FirnClients, 'public'>,
  deployment: Pick<FirnDeployment, 'chainId' | 'jobMarket'>,
  requester: string,
): Promise<string | undefined> {
  const f = rec.chain;
  const where = `the local record of job ${jobId} (${recordFile(jobId)})`;
  if (
    typeof f !== 'object' ||
    f === null ||
    typeof f.chainId !== 'number' ||
    typeof f.jobMarket !== 'string' ||
    !ADDRESS.test(f.jobMarket) ||
    typeof f.requester !== 'string' ||
    !ADDRESS.test(f.requester) ||
    typeof f.postBlockHash !== 'string' ||
    !HASH.test(f.postBlockHash) ||
    typeof f.postBlock !== 'string' ||
    !/^[0-9]{1,20}$/.test(f.postBlock)
  )
    return typeof rec.postTx === 'string'
      ? `${where} was written when its postJob transaction ${rec.postTx} was sent and its receipt never came in, so it names no block to tell this job from an earlier chain's with the same id`
      : `${where} names no chain it was posted on (written by an older firn), so it may be an earlier chain's job with the same id`;
  if (f.chainId !== deployment.chainId || f.jobMarket.toLowerCase() !== deployment.jobMarket.toLowerCase())
    return `${where} is for the job market ${f.jobMarket} on chain ${f.chainId}, not ${deployment.jobMarket} on chain ${deployment.chainId}`;
  const block = await c.public.getBlock({ blockNumber: BigInt(f.postBlock) }).catch((e: unknown) => {
    // A block past this chain's head: the chain is younger than the entry's.
    if (e instanceof BlockNotFoundError) return undefined;
    throw e;
  });
  if (block?.hash?.toLowerCase() !== f.postBlockHash.toLowerCase())
    return `${where} was posted in block ${f.postBlock} ${f.postBlockHash}, which this chain does not have: it is an earlier chain's job with the same id (a restarted devnet reuses job ids)`;
  if (requester.toLowerCase() !== f.requester.toLowerCase())
    return `${where} was posted by ${f.requester}, but this chain's job ${jobId} by ${requester}`;
  return undefined;
}

/** The file of a job's journal entry. */
export function recordFile(jobId: string): string {
  return join(journalDir(), `${jobId.toLowerCase()}.json`);
}

/** Read the record of a job; E_NOT_FOUND naming where it was looked for (else as findJobRecord). */
export function readJobRecord(jobId: string): JobJournalEntry {
  const o = findJobRecord(jobId);
  if (o === undefined)
    throw new FirnError(
      'E_NOT_FOUND',
      `no local record of job ${jobId} in ${journalDir()}: retry works for jobs posted by firn train or firn infer from this machine (set FIRN_HOME if they used another); run the command again instead`,
    );
  return o;
}

/** The callbacks `firn infer|train|run` hand the SDK for the journal of their post (journalPosts). */
export interface PostJournal {
  /**
   * runJob's / runApp's onPostSigned: a postJob transaction is signed and about to be handed to
   * the RPC (decision 1760). Its pending entry (hash, expected job id, the result key's salt) is
   * written and fsynced here, before the send, so the post can be found whatever happens to the
   * send or to this process.
   */
  onPostSigned(tx: PostJobSent): void;
  /** runJob's / runApp's onPostSent: a postJob transaction is out, its receipt not in yet. */
  onPostSent(tx: PostJobSent): void;
  /** runJob's / runApp's onPosted: the receipt named the job. */
  onPosted(jobId: Hex, posted?: JobPostedAt): void;
  /**
   * The command failed (runJob/runApp threw `e`). A post still pending whose transaction was never
   * mined (E_CHAIN_REPLACED: another transaction of the account took its nonce; E_CHAIN_REVERTED:
   * mined without posting) leaves no entry; any other failure keeps the pending entry, as the
   * transaction may still be mined (`firn job list` and `firn job reclaim` settle it later).
   */
  failed(e: unknown): void;
}

/**
 * The journal side of a post, shared by `firn infer`, `firn train` and `firn run` (decisions 1630,
 * 1650, 1665, 1685, 1760). `onPostSigned` writes (fsynced) a pending entry under the job id the
 * simulation returned, with the signed transaction's hash (`postTx`, and `postTxs`: every hash of
 * the post, a resend or re-price at the same nonce adds one) and the result key's salt, before the
 * transaction is handed to the RPC, never replacing another run's entry for that id (recordJob's
 * O_EXCL; a re-price rewrites this post's own entry). `onPostSent` (the RPC took it) writes that
 * entry when onPostSigned did not, tells `guard` so a signal looks for the job, and says `postJob
 * transaction H sent (job ID)` on `say`. `onPosted`
 * removes every pending entry the post wrote under another id than the one the receipt named
 * (forgetJob: only while it is still this post's), writes the entry with the chain facts of the
 * post (`chain`, from `posted`) and the job it replaces (a repost after a lost node), tells
 * `guard`, says `job ID posted`, and warns on `warn` when the entry of a job whose result key is
 * derived (`resultKem`) could not be written: only this run can then open its result. `failed`
 * removes the pending entry of a transaction that was never mined, and the entry of one the RPC
 * never took when the failure proves it was not broadcast (mayHaveBroadcast); one that may have
 * been broadcast (no answer to the send) is kept, with a warning naming the entry and the commands
 * that settle it (`firn job list`, `firn job result`). Every entry names `sentOn` (chain
 * id, market, requester). Nothing here throws (the journal is best effort; a paid job must not
 * fail on it).
 *
 * @param o.options the command's options as they go in the journal (paths resolved, RPC URLs
 *   without credentials: journalOptions).
 * @param o.requester the posting account's address (0x + 40 hex).
 * @param o.resultKem the salt and public key of the derived result key (absent with --kem-key).
 * @param o.reservation the file reserveResultKey wrote for resultKem before paying: removed once
 *   the job's entry (which holds the salt) is written, or when the command fails with nothing posted;
 *   kept (and named in the warning) when the job's entry could not be written.
 * @param o.say the command's progress lines (absent: none, as `firn train` prints none here).
 */
export function journalPosts(o: {
  command: JobJournalEntry['command'];
  options: Record<string, unknown>;
  deployment: FirnDeployment;
  requester: Hex;
  resultKem?: { resultKemSalt: Hex; resultKemPublicKey: Hex };
  reservation?: string;
  guard: Pick<JobInterruptGuard, 'sent' | 'posted'>;
  say?: (line: string) => void;
  warn: (line: string) => void;
}): PostJournal {
  let previous: Hex | undefined;
  // The post whose receipt is awaited: every hash signed for it, the ids its pending entries are
  // under, and whether the RPC took one of them (`sent`: onPostSent came).
  let pending: { hashes: Hex[]; ids: Hex[]; sent: boolean } | undefined;
  const base = () => ({
    command: o.command,
    options: o.options,
    postedAt: Math.floor(Date.now() / 1000),
  });
  const sentOn = { chainId: o.deployment.chainId, jobMarket: o.deployment.jobMarket, requester: o.requester };
  const forgetPending = (except?: Hex): void => {
    for (const id of pending?.ids ?? [])
      if (except === undefined || id.toLowerCase() !== except.toLowerCase()) forgetJob(id, pending!.hashes);
  };
  // Write (or rewrite) the pending entry of the post under tx's expected id, naming every hash.
  const recordPending = (tx: PostJobSent): void => {
    pending ??= { hashes: [], ids: [], sent: false };
    if (pending.hashes.some((h) => h.toLowerCase() === tx.hash.toLowerCase())) return;
    pending.hashes.push(tx.hash);
    const wrote = recordJob(
      {
        jobId: tx.expectedJobId,
        ...base(),
        ...(previous ? { replaces: previous } : {}),
        ...(o.resultKem ?? {}),
        postTx: tx.hash,
        postTxs: [...pending.hashes],
        sentOn,
      },
      pending.hashes,
    );
    if (wrote && !pending.ids.some((id) => id.toLowerCase() === tx.expectedJobId.toLowerCase()))
      pending.ids.push(tx.expectedJobId);
  };
  return {
    onPostSigned(tx) {
      recordPending(tx);
    },
    onPostSent(tx) {
      // Written already by onPostSigned when the SDK calls it; else (an older caller) here.
      recordPending(tx);
      pending!.sent = true;
      o.guard.sent(tx);
      o.say?.(`postJob transaction ${tx.hash} sent (job ${tx.expectedJobId})`);
    },
    onPosted(jobId, posted) {
      forgetPending(jobId);
      pending = undefined;
      const recorded = recordJob({
        jobId,
        ...base(),
        ...(posted ? { chain: jobChainFacts(o.deployment, o.requester, posted) } : {}),
        ...(previous ? { replaces: previous } : {}),
        ...(o.resultKem ?? {}),
        sentOn,
      });
      o.guard.posted(jobId);
      previous = jobId;
      o.say?.(`job ${jobId} posted`);
      if (recorded && o.reservation !== undefined) releaseResultKey(o.reservation);
      if (!recorded && o.resultKem)
        o.warn(
          `warning: job ${jobId} could not be recorded in ${journalDir()}: only this run can open its result; if it is interrupted, the result can no longer be opened (its key's salt stays in ${o.reservation ?? 'no file'})`,
        );
    },
    failed(e) {
      // No post was seen to go out (nothing signed, or the RPC never said it took one). The
      // signed post and the reserved salt belong to no job unless the failure leaves open that the
      // RPC took the signed transaction (decision 1747, amended): then both are kept (1760).
      if (pending?.sent !== true) {
        if (!mayHaveBroadcast(e)) {
          forgetPending();
          pending = undefined;
          if (previous === undefined && o.reservation !== undefined) releaseResultKey(o.reservation);
          return;
        }
        const id = pending?.ids[pending.ids.length - 1];
        const tx = pending?.hashes[pending.hashes.length - 1];
        if (id !== undefined && tx !== undefined)
          o.warn(
            `warning: postJob transaction ${tx} may have reached the chain before the RPC stopped answering, so job ${id} (the id expected) may be posted and paid for. Its local record ${recordFile(id)} holds the result key's salt${o.reservation === undefined ? '' : ` (kept in ${o.reservation} too)`}: \`firn job list\` (or \`firn job status ${id}\`, \`firn job result ${id} --out DIR\`) finds what became of it; \`firn job retry\` runs it again or \`firn job reclaim\` refunds it once it is known`,
          );
        else if (previous === undefined && o.reservation !== undefined)
          o.warn(
            `warning: the postJob transaction may have reached the chain before the RPC stopped answering, so a job may be posted and paid for. Its result key's salt is kept in ${o.reservation}: do not delete that file. Run \`firn job list\` to see whether a job was posted; keep the file until its result is opened`,
          );
        return;
      }
      if (!neverMined(e)) return;
      forgetPending();
      pending = undefined;
    },
  };
}

/** viem's errors for a request whose answer never came: the RPC may have acted on it. */
const NO_ANSWER = new Set([
  'TimeoutError',
  'HttpRequestError',
  'WebSocketRequestError',
  'SocketClosedError',
  'ResponseBodyTooLargeError',
]);

/**
 * Whether `e`'s cause chain (at most 8 deep, FirnError and viem `cause`s alike) leaves open that a
 * signed postJob transaction reached the RPC (decision 1747, amended): a request with no answer
 * (NO_ANSWER, matched by name so a second copy of viem counts too) that was eth_sendRawTransaction
 * or whose request body is not known, or a refusal saying the transaction is already in the pool
 * (a retried send whose first try got through). A failure before the send (the simulation, the
 * estimate, a read, a refusal with a JSON-RPC error, an error of firn's own) proves nothing was
 * broadcast: false.
 */
function mayHaveBroadcast(e: unknown): boolean {
  for (let c = e as { cause?: unknown } | undefined, i = 0; c && i < 8; c = c.cause as typeof c, i++) {
    if (!(c instanceof Error)) continue;
    const meta = (c as { metaMessages?: unknown }).metaMessages;
    const text = Array.isArray(meta) ? meta.filter((m) => typeof m === 'string').join('\n') : '';
    if (
      NO_ANSWER.has(c.name) &&
      (!text.includes('Request body:') || text.includes('"eth_sendRawTransaction"'))
    )
      return true;
    if (/already known|known transaction|already imported/i.test(c.message)) return true;
  }
  return false;
}

/** Whether `e`'s cause chain (at most 8 deep) says the post was never mined: E_CHAIN_REPLACED or E_CHAIN_REVERTED. */
function neverMined(e: unknown): boolean {
  for (let c = e as { cause?: unknown } | undefined, i = 0; c && i < 8; c = c.cause as typeof c, i++)
    if (c instanceof FirnError && (c.code === 'E_CHAIN_REPLACED' || c.code === 'E_CHAIN_REVERTED'))
      return true;
  return false;
}

/** What became of a pending entry's post (settlePendingPost). */
export type PendingPostFate =
  /** A transaction of the post was mined and posted `jobId` (maybe not the id it was expected at). */
  | { fate: 'posted'; jobId: Hex; posted: JobPostedAt }
  /** None was posted: one was mined and reverted, or none is mined or known to the node any more. */
  | { fate: 'not posted'; tx: Hex; why: string }
  /** One still waits in the node's pool. */
  | { fate: 'waiting'; tx: Hex };

/** The hashes of a pending entry's post: `postTxs`, else `postTx` (entries before decision 1685). */
function postHashes(rec: JobJournalEntry): Hex[] {
  const all = Array.isArray(rec.postTxs) ? rec.postTxs : [];
  const list = [...all, ...(typeof rec.postTx === 'string' ? [rec.postTx] : [])].filter(
    (h): h is Hex => typeof h === 'string' && HASH.test(h),
  );
  // A tampered entry naming thousands of hashes costs at most this many reads.
  return [...new Set(list.map((h) => h.toLowerCase() as Hex))].slice(0, 8);
}

/**
 * Whether `rec` is a pending entry: written when its postJob transaction was sent, before the
 * receipt named the job (decision 1665), so it has `postTx` and no chain facts.
 */
export function isPendingEntry(rec: JobJournalEntry): boolean {
  return typeof rec.postTx === 'string' && (typeof rec.chain !== 'object' || rec.chain === null);
}

/**
 * What became of the post a pending entry records, read on the chain `c` reads (decision 1685):
 * a receipt of one of its transactions with a JobPosted event is the job it posted; a receipt
 * without one is a mined revert (nothing posted, nothing paid); no receipt while the node still
 * knows one of them is a post waiting in the pool; none mined nor known is a post that will not be
 * mined (another transaction of the account took its nonce, or the pool dropped it and nobody
 * sends it again): nothing was posted. Only transactions sent by the entry's requester count (a
 * receipt or pooled transaction from another account is read as unknown, and a JobPosted event
 * must name that requester), so an entry naming another account's transaction never makes that
 * account's job this machine's. Throws the RPC's errors other than "not found".
 */
export async function settlePendingPost(
  rec: JobJournalEntry,
  c: Pick<FirnClients, 'public'>,
): Promise<PendingPostFate> {
  const hashes = postHashes(rec);
  // The account the entry says sent the post: a transaction of another account is not this
  // post's, whatever the entry names (a careless or tampered entry must not make another
  // account's job this machine's). Entries before decision 1685 name none and are read as before.
  const from = entryRequester(rec)?.toLowerCase();
  const ours = (sender: string | undefined | null) =>
    from === undefined || (typeof sender === 'string' && sender.toLowerCase() === from);
  for (const hash of hashes) {
    const receipt = await c.public.getTransactionReceipt({ hash }).catch((e: unknown) => {
      if (e instanceof TransactionReceiptNotFoundError) return undefined;
      throw e;
    });
    if (receipt === undefined || !ours(receipt.from)) continue;
    const [ev] = parseEventLogs({ abi: firnJobMarketAbi, eventName: 'JobPosted', logs: receipt.logs });
    if (receipt.status !== 'success' || ev === undefined || !ours(ev.args.requester))
      return {
        fate: 'not posted',
        tx: hash,
        why: 'was mined and reverted: no job was posted, no escrow paid',
      };
    return {
      fate: 'posted',
      jobId: ev.args.jobId,
      posted: { txHash: hash, blockNumber: receipt.blockNumber, blockHash: receipt.blockHash },
    };
  }
  for (const hash of hashes) {
    const known = await c.public.getTransaction({ hash }).then(
      (tx) => ours(tx.from),
      (e: unknown) => {
        if (e instanceof TransactionNotFoundError) return false;
        throw e;
      },
    );
    if (known) return { fate: 'waiting', tx: hash };
  }
  const last = hashes[hashes.length - 1] ?? (rec.postTx as Hex);
  return {
    fate: 'not posted',
    tx: last,
    why: 'is neither mined nor waiting in the pool (another transaction of the account took its nonce, or it was dropped): no job was posted, no escrow paid',
  };
}

/** The address a journal entry says posted its job (`sentOn`, else `chain`), if it is one. */
function entryRequester(rec: JobJournalEntry): Hex | undefined {
  const r = rec.sentOn?.requester ?? rec.chain?.requester;
  return typeof r === 'string' && /^0x[0-9a-fA-F]{40}$/.test(r) ? (r as Hex) : undefined;
}

/**
 * Whether a journal entry was sent to the chain and market of `deployment`: true or false from its
 * `sentOn`, undefined for an entry that names none (written before decision 1685).
 */
export function entrySentOn(
  rec: JobJournalEntry,
  deployment: Pick<FirnDeployment, 'chainId' | 'jobMarket'>,
): boolean | undefined {
  if (rec.sentOn === undefined || rec.sentOn === null) return undefined;
  return (
    rec.sentOn.chainId === deployment.chainId &&
    typeof rec.sentOn.jobMarket === 'string' &&
    rec.sentOn.jobMarket.toLowerCase() === deployment.jobMarket.toLowerCase()
  );
}

/**
 * Settle the pending entry `rec` of `jobId` (best effort on the journal; the chain reads throw as
 * settlePendingPost): its post posted a job, so the entry becomes that job's, with its chain facts
 * (`deployment`, the entry's requester), under the id the receipt named; or nothing was posted, so
 * the entry is removed. A post still waiting leaves it as it is. Once the fate is known the salt's
 * reservation file (resultKeyReservationFile), if any is left, is removed: the completed entry
 * holds the salt, or no job was paid (decision 1760). Returns the fate.
 */
export async function settlePendingEntry(
  rec: JobJournalEntry,
  jobId: Hex,
  c: Pick<FirnClients, 'public'>,
  deployment: Pick<FirnDeployment, 'chainId' | 'jobMarket'>,
): Promise<PendingPostFate> {
  const fate = await settlePendingPost(rec, c);
  const hashes = postHashes(rec);
  // The salt's reservation (reserveResultKey), kept when the send may have been broadcast: not
  // needed once the post's fate is known (decision 1760).
  const reservation =
    typeof rec.resultKemSalt === 'string' && HASH.test(rec.resultKemSalt)
      ? resultKeyReservationFile({ resultKemSalt: rec.resultKemSalt })
      : undefined;
  if (fate.fate === 'not posted') {
    forgetJob(jobId, hashes);
    if (reservation !== undefined) releaseResultKey(reservation);
  }
  if (fate.fate === 'posted') {
    const { postTx: _t, postTxs: _ts, ...rest } = rec;
    const requester = entryRequester(rec);
    if (fate.jobId.toLowerCase() !== jobId.toLowerCase()) forgetJob(jobId, hashes);
    if (
      requester !== undefined &&
      recordJob({
        ...rest,
        jobId: fate.jobId,
        chain: {
          chainId: deployment.chainId,
          jobMarket: deployment.jobMarket,
          requester,
          postTx: fate.posted.txHash,
          postBlock: fate.posted.blockNumber.toString(),
          postBlockHash: fate.posted.blockHash,
        },
      }) &&
      reservation !== undefined
    )
      releaseResultKey(reservation);
  }
  return fate;
}

/** Most pending entries `firn job list` settles in one run (each costs a few RPC reads). */
export const MAX_SETTLED_ENTRIES = 32;

/**
 * The pending entries of this machine's journal sent to the chain and market of `deployment`
 * (their `sentOn`), newest first, at most MAX_SETTLED_ENTRIES: what `firn job list` settles. An
 * unreadable or malformed entry is skipped.
 */
export function pendingEntriesOn(
  deployment: Pick<FirnDeployment, 'chainId' | 'jobMarket'>,
): { jobId: Hex; rec: JobJournalEntry }[] {
  let names: string[];
  try {
    names = readdirSync(journalDir());
  } catch {
    return [];
  }
  const found: { jobId: Hex; rec: JobJournalEntry }[] = [];
  for (const n of names) {
    const m = /^(0x[0-9a-f]{64})\.json$/.exec(n);
    if (!m) continue;
    let rec: JobJournalEntry | undefined;
    try {
      rec = findJobRecord(m[1]!);
    } catch {
      continue;
    }
    if (rec === undefined || !isPendingEntry(rec) || entrySentOn(rec, deployment) !== true) continue;
    found.push({ jobId: m[1] as Hex, rec });
  }
  return found.sort((a, b) => b.rec.postedAt - a.rec.postedAt).slice(0, MAX_SETTLED_ENTRIES);
}
