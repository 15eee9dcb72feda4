import { unlinkSync } from 'node:fs';
import type { Hex } from '@firn/core';
import type { ArtifactStore } from './artifactStore.ts';
import type { ArtifactCharge, ArtifactHolder, NodeDb, SweepQueueEntry } from './nodeDb.ts';
import type { QuotaLedger } from './quota.ts';

/** How long stored artifacts are kept (docs/api.md "Limits", docs/decisions/1603). */
export interface ArtifactRetention {
  /**
   * Seconds an artifact no job record names is kept after its upload (a re-upload of a stored
   * artifact does not restart it) before it is deleted and its charge released. At least MIN_UPLOAD_RETENTION_SECONDS
   * (an upload intent's longest lifetime). Default 86,400 (24 h). `firn node start --upload-retention`.
   */
  uploadSeconds: number;
  /**
   * Seconds the inputs and outputs of a job are kept after the job's record reached a final state
   * (`finalized`: paid on chain; `failed`: failed, reclaimed, slashed, or over without a proof),
   * then deleted and released. An artifact several jobs name is kept until the last of them
   * expires; one a job not yet final names is never deleted. Default 604,800 (7 days).
   * `firn node start --output-retention`.
   */
  outputSeconds: number;
}

/** An upload intent may last up to an hour (http/auth.ts MAX_INTENT_LIFETIME_SECONDS): no upload is dropped sooner. */
export const MIN_UPLOAD_RETENTION_SECONDS = 3600;
/** The shortest output retention accepted, seconds (an hour after the job is final). */
export const MIN_OUTPUT_RETENTION_SECONDS = 3600;
/** The longest retention accepted, seconds (10 years: past it, keep the data elsewhere). */
export const MAX_RETENTION_SECONDS = 10 * 365 * 86_400;

export const DEFAULT_ARTIFACT_RETENTION: ArtifactRetention = Object.freeze({
  uploadSeconds: 86_400,
  outputSeconds: 7 * 86_400,
});

/** Charge records looked at per sweep pass, at most (bounded work per pass). */
export const SWEEP_CHECKS_PER_PASS = 512;
/** Artifacts deleted per sweep pass, at most. */
export const SWEEP_DELETIONS_PER_PASS = 128;
/** Owners (addresses, and the records with none) visited per sweep pass, at most. */
export const SWEEP_OWNERS_PER_PASS = 256;
/** Charge records of one owner read per visit, at most (its turn in the round-robin). */
export const SWEEP_CHECKS_PER_OWNER_VISIT = 64;
/**
 * Artifacts of one owner deleted per visit, at most: an owner with a backlog yields its turn after
 * this many, so another's expired upload is not queued behind it (decision 1603, 4.).
 */
export const SWEEP_DELETIONS_PER_OWNER_VISIT = 32;
/** Time one `sweep` call may take for further passes while there is a backlog, ms (performance.now). */
export const SWEEP_TIME_BUDGET_MS = 50;

/** Job record states after which the job can change no more (on chain and here). */
const FINAL: ReadonlySet<ArtifactHolder['status']> = new Set(['finalized', 'failed']);

/**
 * When artifact `c` may be deleted under `retention` (unix s), given the job records that name it;
 * undefined while a job not yet final names it (kept for as long as that job lives).
 */
export function artifactExpiry(
  c: Pick<ArtifactCharge, 'storedAt'>,
  holders: readonly Pick<ArtifactHolder, 'status' | 'updatedAt' | 'claimed'>[],
  retention: ArtifactRetention,
): number | undefined {
  // A job failed before any claim (refused at pre-flight) ran nothing and has no result: it keeps
  // nothing, or a job naming another's uploads, refused at once, would keep them for a week.
  holders = holders.filter((h) => !(h.status === 'failed' && h.claimed === false));
  if (holders.length === 0) return c.storedAt + retention.uploadSeconds;
  let last = 0;
  for (const h of holders) {
    if (!FINAL.has(h.status)) return undefined;
    last = Math.max(last, h.updatedAt);
  }
  // Never before the upload's own retention either (a job failed at once keeps its inputs that long).
  return Math.max(c.storedAt + retention.uploadSeconds, last + retention.outputSeconds);
}

/** What one `sweep` call (one pass or more) did. */
export interface SweepResult {
  /** Charge records looked at. */
  checked: number;
  /** Artifacts deleted. */
  deleted: number;
  /** Charged bytes released. */
  freedBytes: number;
  /** Passes run (each bounded by the SWEEP_*_PER_PASS limits). */
  passes?: number;
  /** Whether it stopped at its time budget with work left (a backlog: sweep again soon). */
  more?: boolean;
}

/** A position in one owner's records, (stored_at, artifact_id) order: the last record handled. */
interface Position {
  storedAt: number;
  artifactId: string;
}

/** Where an owner's scan of its due records stands between its visits. */
interface Scan {
  /** The last record read. */
  at: Position;
  /** The earliest time (stored_at scale) a record it read and kept may be due again. */
  recheck: number;
}

const START: Position = Object.freeze({ storedAt: Number.MIN_SAFE_INTEGER, artifactId: '' });
/** Past this many owners with a scan in progress, the scans are dropped (they restart from the oldest). */
const MAX_OWNER_SCANS = 100_000;

/**
 * How soon a sweep looks again at an artifact it found held, seconds (one default sweep interval):
 * a hold released before its end stops keeping the file within this long.
 */
export const HELD_RECHECK_SECONDS = 60;

/**
 * The node's artifact garbage collector (docs/decisions/1603, 1640): every stored artifact has a
 * charge record (QuotaLedger with a book) and a lifetime (artifactExpiry), and `sweep` deletes the
 * expired ones and releases their charge.
 *
 * Whom it visits: only owners with something due, from the node database's sweep queue (one row
 * per owner, and one for the records with no owner, holding the time from which it has something
 * to look at; NodeDb.sweepQueueHead seeks the first due one): owners with nothing due, however
 * many, cost nothing. What it reads: each visit reads that owner's records stored at or before
 * `now - retention.uploadSeconds` (artifactExpiry is never sooner) oldest first, from where its
 * last visit stopped, and deletes at most SWEEP_DELETIONS_PER_OWNER_VISIT; an owner with more to
 * read goes back in the queue behind every owner due now (round robin), so one address's backlog
 * delays another's expired upload by one visit, not by the backlog's length. An owner read to the
 * end goes back at the time its next record falls due or a record it kept may expire (a hold's
 * end, the expiry its final jobs give it, or `outputSeconds` on for one a live job names: no job
 * becoming final sooner can make it expire sooner), and leaves the queue with no record left: a
 * kept record is read again when it may have expired, not on every sweep. A job record written
 * `failed` before any claim (it keeps nothing) puts the owners of what it names back at once
 * (NodeDb.putJob).
 * How much: a pass is bounded (SWEEP_CHECKS_PER_PASS records, SWEEP_DELETIONS_PER_PASS deletions,
 * SWEEP_OWNERS_PER_PASS visits); one `sweep` runs passes while work is left and its time budget is
 * not spent, and stops once no owner has anything due.
 *
 * Each deletion unlinks the file first, then drops the record and releases the bytes: a crash
 * between the two leaves a record with no file, which the ledger drops at the next start
 * (QuotaLedger reconcile). `hold` keeps ids a submission is checking (before its job record names
 * them) from a sweep. Time is passed in (`now`, unix s, the clock of the job records).
 */
export class ArtifactSweeper {
  /** Where each owner's scan stopped (absent: from its oldest record). */
  private readonly scans = new Map<string | null, Scan>();
  /** Orders the owners put back in the queue at one time (round robin). */
  private seq = 0;
  /**
   * Ids held by submissions in progress: per id, the end time (unix s) of each of its holds, keyed
   * by a token per hold so one submission's release never drops another's.
   */
  private readonly held = new Map<string, Map<symbol, number>>();

  constructor(
    private readonly store: ArtifactStore,
    private readonly quota: QuotaLedger,
    private readonly db: NodeDb,
    readonly retention: ArtifactRetention = DEFAULT_ARTIFACT_RETENTION,
  ) {}

  /** Whether the queue was checked against the retention in force (at the first sweep). */
  private synced = false;

  /**
   * Keep `ids` from being deleted until `until` (unix s): a submission holds its inputs once its
   * checks passed until its job record (which then names them) is written. Returns the release of
   * this hold alone (idempotent; other holds on the same ids stay): a submission refused before
   * its record is written calls it, so no refused request extends an artifact's life.
   */
  hold(ids: readonly Hex[], until: number): () => void {
    const token = Symbol('hold');
    const keys = ids.map((id) => id.toLowerCase());
    for (const k of keys) {
      const holds = this.held.get(k) ?? new Map<symbol, number>();
      holds.set(token, until);
      this.held.set(k, holds);
    }
    return () => {
      for (const k of keys) {
        const holds = this.held.get(k);
        if (holds?.delete(token) && holds.size === 0) this.held.delete(k);
      }
    };
  }

  /** The latest end (unix s) of the holds on `id` (lower-case), or undefined when none. */
  private heldUntil(k: string): number | undefined {
    const holds = this.held.get(k);
    if (holds === undefined) return undefined;
    let until: number | undefined;
    for (const t of holds.values()) if (until === undefined || t > until) until = t;
    return until;
  }

  /**
   * Sweep at time `now` (unix s): one bounded pass, then more while work is left and `budgetMs`
   * (ms of performance.now since the call began; 0: exactly one pass) is not spent. A file that
   * cannot be removed (not ENOENT) is left, with its record, for the next sweep. Never throws for
   * one artifact; a database failure ends the call (thrown).
   */
  sweep(now: number, budgetMs: number = SWEEP_TIME_BUDGET_MS): SweepResult {
    const began = performance.now();
    if (!this.synced) {
      // The queue's times were reckoned with the retention in force: a changed one starts it over.
      // At the first sweep, not at construction: a full disk fails a sweep (retried), not the start.
      this.db.syncSweepRetention(this.retention);
      this.synced = true;
    }
    for (const [k, holds] of this.held) {
      for (const [token, until] of holds) if (until <= now) holds.delete(token);
      if (holds.size === 0) this.held.delete(k);
    }
    // artifactExpiry is never before storedAt + uploadSeconds: newer records cannot be due.
    const due = now - this.retention.uploadSeconds;
    const total: Required<SweepResult> = { checked: 0, deleted: 0, freedBytes: 0, passes: 0, more: false };
    for (;;) {
      const { result, more } = this.pass(now, due);
      total.checked += result.checked;
      total.deleted += result.deleted;
      total.freedBytes += result.freedBytes;
      total.passes++;
      total.more = more;
      if (!more || performance.now() - began >= budgetMs) return total;
    }
  }

  /** One bounded pass; `more`: it stopped at a bound (not because no owner had anything due). */
  private pass(now: number, due: number): { result: SweepResult; more: boolean } {
    const result: SweepResult = { checked: 0, deleted: 0, freedBytes: 0 };
    for (let visits = 0; ; visits++) {
      if (
        visits >= SWEEP_OWNERS_PER_PASS ||
        result.checked >= SWEEP_CHECKS_PER_PASS ||
        result.deleted >= SWEEP_DELETIONS_PER_PASS
      )
        return { result, more: true };
      const head = this.db.sweepQueueHead(due);
      if (head === undefined) return { result, more: false };
      this.visit(head, now, due, result);
    }
  }

  /** Read and sweep a share of the due records of the owner first in the queue, and requeue it. */
  private visit(head: SweepQueueEntry, now: number, due: number, result: SweepResult): void {
    const { owner } = head;
    // A copy: should this visit throw (a database failure), the next one reads the same records.
    const scan = { ...(this.scans.get(owner) ?? { at: START, recheck: Number.POSITIVE_INFINITY }) };
    const limit = Math.min(SWEEP_CHECKS_PER_OWNER_VISIT, SWEEP_CHECKS_PER_PASS - result.checked);
    const page = this.db.artifactChargesDue(owner, due, scan.at, limit);
    const deletions = Math.min(SWEEP_DELETIONS_PER_OWNER_VISIT, SWEEP_DELETIONS_PER_PASS - result.deleted);
    const unlinked: Hex[] = [];
    let stopped = false;
    for (const c of page) {
      if (unlinked.length >= deletions) {
        stopped = true; // This owner's turn is over: resume at `c` on its next visit.
        break;
      }
      result.checked++;
      scan.at = { storedAt: c.storedAt, artifactId: c.artifactId };
      const kept = this.sweepOne(c, now, due);
      if (kept === undefined) unlinked.push(c.artifactId);
      else scan.recheck = Math.min(scan.recheck, kept);
    }
    // The visit's records go in one transaction, their bytes once it committed (QuotaLedger.forgetAll).
    // Should it fail (thrown), the files are gone and the records stay: the next sweep finds them
    // (ENOENT counts as deleted) and releases them then, or the next start drops them (reconcile).
    result.freedBytes += this.quota.forgetAll(unlinked);
    result.deleted += unlinked.length;
    if (stopped || page.length === limit) {
      // More to read: back in the queue behind every owner due now.
      if (this.scans.size >= MAX_OWNER_SCANS && !this.scans.has(owner)) this.scans.clear();
      this.scans.set(owner, scan);
      // A lowering that came between (a record stored behind the scan, a job failed unclaimed):
      // the scan starts over from the oldest.
      if (!this.db.setSweepQueue(head, due, ++this.seq)) this.scans.delete(owner);
      return;
    }
    // Read to the end: back when its next record falls due or a kept one may expire.
    this.scans.delete(owner);
    const next = Math.min(
      scan.recheck,
      this.db.nextArtifactStoredAfter(owner, due) ?? Number.POSITIVE_INFINITY,
    );
    if (next === Number.POSITIVE_INFINITY) this.db.dropSweepQueue(head);
    else this.db.setSweepQueue(head, next, 0);
  }

  /**
   * Unlink `c`'s file if it expired and is not held: undefined when it is gone (its record is then
   * dropped by the caller); else the earliest time (stored_at scale, later than `due`) it may be
   * due again.
   */
  private sweepOne(c: ArtifactCharge, now: number, due: number): number | undefined {
    const upload = this.retention.uploadSeconds;
    const until = this.heldUntil(c.artifactId);
    // Looked at again within HELD_RECHECK_SECONDS, not only at the hold's end: a hold is released
    // early (its submission refused or recorded), and a released one must not keep the file.
    if (until !== undefined) return Math.min(until, now + HELD_RECHECK_SECONDS) - upload;
    const expiry = artifactExpiry(c, this.db.artifactHolders(c.artifactId), this.retention);
    // A job not final names it: it expires no sooner than outputSeconds after that job becomes
    // final, so after now + outputSeconds (a job failed unclaimed requeues it, NodeDb.putJob).
    if (expiry === undefined) return due + this.retention.outputSeconds;
    if (now < expiry) return expiry - upload;
    try {
      // Synchronous, with the check above: no submission's check of the file runs in between.
      unlinkSync(this.store.path(c.artifactId));
    } catch (e) {
      // Left for the next sweep (a minute on).
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return due + 1;
    }
    return undefined;
  }
}
