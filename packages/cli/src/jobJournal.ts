import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FirnError, type Hex } from '@firn/core';

/**
 * The requester's local record of the jobs `firn train` and `firn infer` posted, so that
 * `firn job retry JOBID` can run the same command again on another node. It holds the command and
 * its options (file paths, flags), never file contents, keys or anything derived from the data:
 * the inputs are read again, sealed again and granted to the new node at retry time.
 * Location: `$FIRN_HOME/jobs/<jobId>.json` (default `~/.firn`), owner-only.
 */
export interface JobJournalEntry {
  jobId: Hex;
  command: 'train' | 'infer';
  /** The command's options as parsed (paths resolved to absolute ones). */
  options: Record<string, unknown>;
  /** Unix seconds (local clock) when the job was posted. */
  postedAt: number;
  /** The job this one replaced (a retry or a reassignment), if any. */
  replaces?: Hex;
}

/** Options never written to the journal (none is secret today; this keeps it so). */
const NEVER_RECORDED = new Set(['json']);

export function journalDir(): string {
  return join(process.env['FIRN_HOME'] ?? join(homedir(), '.firn'), 'jobs');
}

const JOB_ID = /^0x[0-9a-fA-F]{64}$/;

/** Record a posted job; best effort (a read-only home must not fail a paid job). */
export function recordJob(entry: JobJournalEntry): void {
  try {
    const dir = journalDir();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const options = Object.fromEntries(Object.entries(entry.options).filter(([k]) => !NEVER_RECORDED.has(k)));
    const file = join(dir, `${entry.jobId.toLowerCase()}.json`);
    writeFileSync(file, `${JSON.stringify({ ...entry, options }, null, 2)}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  } catch {
    // The job runs regardless; only `firn job retry` of it will say there is no record.
  }
}

/** Read the record of a job; E_NOT_FOUND naming where it was looked for. */
export function readJobRecord(jobId: string): JobJournalEntry {
  if (!JOB_ID.test(jobId))
    throw new FirnError('E_INVALID_INPUT', `JOBID must be 32 bytes of hex (got ${jobId})`);
  const file = join(journalDir(), `${jobId.toLowerCase()}.json`);
  let o: JobJournalEntry;
  try {
    o = JSON.parse(readFileSync(file, 'utf8')) as JobJournalEntry;
  } catch {
    throw new FirnError(
      'E_NOT_FOUND',
      `no local record of job ${jobId} in ${journalDir()}: retry works for jobs posted by firn train or firn infer from this machine (set FIRN_HOME if they used another); run the command again instead`,
    );
  }
  if ((o.command !== 'train' && o.command !== 'infer') || typeof o.options !== 'object' || o.options === null)
    throw new FirnError('E_PARSE', `${file} is not a firn job record`);
  return o;
}
