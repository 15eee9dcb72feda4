import { unlinkSync } from 'node:fs';
import type { Hex } from '@firn/core';
import type { ArtifactStore } from './artifactStore.ts';
import type { ArtifactCharge, ArtifactHolder, NodeDb } from './nodeDb.ts';
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
}

/** A position in one owner's records, (stored_at, artifact_id) order: the last record handled. */
interface Position {
  storedAt: number;
  artifactId: string;
}

const START: Position = Object.freeze({ storedAt: Number.MIN_SAFE_INTEGER, artifactId: '' });
/** Past this many owners with a scan in progress, the positions are dropped (they restart from the oldest). */
const MAX_OWNER_POSITIONS = 100_000;
/** The owner key of the records with no owner (they are visited first in each round). */
const UNOWNED = null;

/**
 * The node's artifact garbage collector (docs/decisions/1603): every stored artifact has a charge
 * record (QuotaLedger with a book) and a lifetime (artifactExpiry), and `sweep` deletes the
 * expired ones and releases their charge.
 *
 * What it looks at: only records that can have expired, stored at or before `now -
 * retention.uploadSeconds` (artifactExpiry is never sooner), read from the index
 * artifact_charges(owner, stored_at, artifact_id): a table of records not yet due costs nothing.
 * In what order: owners in turn (the records with no owner, then addresses in order; a cursor
 * that wraps), each visit reading that owner's due records oldest first from where its last visit
 * stopped (a (stored_at, artifact_id) cursor per owner that wraps) and deleting at most
 * SWEEP_DELETIONS_PER_OWNER_VISIT: one address's backlog, however large, delays another's expired
 * upload by one visit per round, not by the backlog's length.
 * How much: a pass is bounded (SWEEP_CHECKS_PER_PASS records, SWEEP_DELETIONS_PER_PASS deletions,
 * SWEEP_OWNERS_PER_PASS visits); one `sweep` runs passes while work is left (a pass hit a bound,
 * or a round of owners left one unfinished) and its time budget is not spent, and stops once a
 * whole round found nothing more to read.
 *
 * Each deletion unlinks the file first, then drops the record and releases the bytes: a crash
 * between the two leaves a record with no file, which the ledger drops at the next start
 * (QuotaLedger reconcile). `hold` keeps ids a submission is checking (before its job record names
 * them) from a sweep. Time is passed in (`now`, unix s, the clock of the job records).
 */
export class ArtifactSweeper {
  /** The owner visited last in the current round (UNOWNED, or an address); undefined: a round starts. */
  private owner: string | null | undefined;
  /** Where each owner's scan stopped (absent: from its oldest record). */
  private readonly positions = new Map<string | null, Position>();
  /** Whether the current round left an owner with records still to read. */
  private roundUnfinished = false;
  /** Ids held by submissions in progress, with the time (unix s) each hold ends. */
  private readonly held = new Map<string, number>();

  constructor(
    private readonly store: ArtifactStore,
    private readonly quota: QuotaLedger,
    private readonly db: NodeDb,
    readonly retention: ArtifactRetention = DEFAULT_ARTIFACT_RETENTION,
  ) {}

  /**
   * Keep `ids` from being deleted until `until` (unix s): a submission holds its inputs once its
   * checks passed until its job record (which then names them) is written.
   */
  hold(ids: readonly Hex[], until: number): void {
    for (const id of ids) {
      const k = id.toLowerCase();
      this.held.set(k, Math.max(until, this.held.get(k) ?? 0));
    }
  }

  /**
   * Sweep at time `now` (unix s): one bounded pass, then more while work is left and `budgetMs`
   * (ms of performance.now since the call began; 0: exactly one pass) is not spent. A file that
   * cannot be removed (not ENOENT) is left, with its record, for a later round. Never throws for
   * one artifact; a database failure ends the call (thrown).
   */
  sweep(now: number, budgetMs: number = SWEEP_TIME_BUDGET_MS): SweepResult {
    const began = performance.now();
    for (const [k, until] of this.held) if (until <= now) this.held.delete(k);
    // artifactExpiry is never before storedAt + uploadSeconds: newer records cannot be due.
    const due = now - this.retention.uploadSeconds;
    const total: Required<SweepResult> = { checked: 0, deleted: 0, freedBytes: 0, passes: 0 };
    for (;;) {
      const { result, more } = this.pass(now, due);
      total.checked += result.checked;
      total.deleted += result.deleted;
      total.freedBytes += result.freedBytes;
      total.passes++;
      if (!more || performance.now() - began >= budgetMs) return total;
    }
  }

  /** One bounded pass; `more`: it stopped at a bound (not at the end of a round with nothing left). */
  private pass(now: number, due: number): { result: SweepResult; more: boolean } {
    const result: SweepResult = { checked: 0, deleted: 0, freedBytes: 0 };
    for (let visits = 0; ; visits++) {
      if (
        visits >= SWEEP_OWNERS_PER_PASS ||
        result.checked >= SWEEP_CHECKS_PER_PASS ||
        result.deleted >= SWEEP_DELETIONS_PER_PASS
      )
        return { result, more: true };
      const owner =
        this.owner === undefined ? UNOWNED : (this.db.nextArtifactOwner(this.owner ?? '') ?? undefined);
      if (owner === undefined) {
        // The round is over: another starts, in this pass only if one owner had more to read.
        this.owner = undefined;
        const unfinished = this.roundUnfinished;
        this.roundUnfinished = false;
        if (!unfinished) return { result, more: false };
        continue;
      }
      this.owner = owner;
      if (this.visit(owner, now, due, result)) this.roundUnfinished = true;
    }
  }

  /** Read and sweep a share of `owner`'s due records; true when it has more left to read. */
  private visit(owner: string | null, now: number, due: number, result: SweepResult): boolean {
    const limit = Math.min(SWEEP_CHECKS_PER_OWNER_VISIT, SWEEP_CHECKS_PER_PASS - result.checked);
    const page = this.db.artifactChargesDue(owner, due, this.positions.get(owner) ?? START, limit);
    const deletions = Math.min(SWEEP_DELETIONS_PER_OWNER_VISIT, SWEEP_DELETIONS_PER_PASS - result.deleted);
    let deleted = 0;
    let last: Position | undefined;
    let stopped = false;
    for (const c of page) {
      if (deleted >= deletions) {
        stopped = true; // This owner's turn is over: resume at `c` on its next visit.
        break;
      }
      result.checked++;
      last = { storedAt: c.storedAt, artifactId: c.artifactId };
      if (this.sweepOne(c, now, result)) deleted++;
    }
    if (stopped || page.length === limit) {
      if (last !== undefined) {
        if (this.positions.size >= MAX_OWNER_POSITIONS && !this.positions.has(owner)) this.positions.clear();
        this.positions.set(owner, last);
      }
      return true;
    }
    // Read to the end of its due records: the next visit starts again from its oldest.
    this.positions.delete(owner);
    return false;
  }

  /** Delete `c` if it expired and is not held; true when deleted (file gone, charge released). */
  private sweepOne(c: ArtifactCharge, now: number, result: SweepResult): boolean {
    if (this.held.has(c.artifactId)) return false;
    const expiry = artifactExpiry(c, this.db.artifactHolders(c.artifactId), this.retention);
    if (expiry === undefined || now < expiry) return false;
    try {
      // Synchronous, with the check above: no submission's check of the file runs in between.
      unlinkSync(this.store.path(c.artifactId));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return false;
    }
    result.freedBytes += this.quota.forget(c.artifactId);
    result.deleted++;
    return true;
  }
}
