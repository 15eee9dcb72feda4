import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { FirnClients, FirnDeployment } from '@firn/chain';
import type { JobPostedAt } from '@firn/client';
import { FirnError, type Hex, TooLargeError } from '@firn/core';
import { BlockNotFoundError } from 'viem';

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
 * Record a posted job; best effort (a read-only home must not fail a paid job): false when it
 * could not be written (the caller says what is then lost).
 */
export function recordJob(entry: JobJournalEntry): boolean {
  // An entry for a sent post (its id only expected) never replaces another run's entry there.
  const flag = entry.postTx === undefined ? 'w' : 'wx';
  try {
    const dir = journalDir();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const options = Object.fromEntries(Object.entries(entry.options).filter(([k]) => !NEVER_RECORDED.has(k)));
    const file = join(dir, `${entry.jobId.toLowerCase()}.json`);
    writeFileSync(file, `${JSON.stringify({ ...entry, options }, null, 2)}\n`, { mode: 0o600, flag });
    chmodSync(file, 0o600);
    return true;
  } catch {
    // The job runs regardless; only `firn job retry` of it will say there is no record.
    return false;
  }
}

/**
 * Remove the entry of `jobId` written for the sent post `postTx` (best effort), once its receipt
 * named another job: only while the entry there is still that post's (another run's entry for
 * the id stays). A malformed id, a missing or unreadable entry is ignored.
 */
export function forgetJob(jobId: Hex, postTx: Hex): void {
  try {
    if (findJobRecord(jobId)?.postTx?.toLowerCase() !== postTx.toLowerCase()) return;
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
