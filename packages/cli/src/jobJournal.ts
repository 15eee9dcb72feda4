import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FirnError, type Hex, TooLargeError } from '@firn/core';

/**
 * The requester's local record of the jobs `firn train` and `firn infer` posted, so that
 * `firn job retry JOBID` can run the same command again on another node. It holds the command and
 * its options (file paths, flags), never file contents, keys or anything derived from the data:
 * the inputs are read again, sealed again and granted to the new node at retry time. Without
 * `--kem-key` it also holds the salt (and public key) of the job's result key, derived from the
 * requester key (resultKem.ts, decision 1630): not secret, and what `firn job result` needs to
 * open the result after the posting process was interrupted; never the private key.
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
  /**
   * The postJob transaction, while its receipt is not in (decision 1665): the entry is written
   * under the job id the simulation gave as soon as the transaction is sent, so an interrupted
   * post is on record; the receipt then confirms the id (or the entry moves to the real one).
   */
  postTx?: Hex;
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
