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

/** What one sweep pass did. */
export interface SweepResult {
  /** Charge records looked at. */
  checked: number;
  /** Artifacts deleted. */
  deleted: number;
  /** Charged bytes released. */
  freedBytes: number;
}

/**
 * The node's artifact garbage collector (docs/decisions/1603): every stored artifact has a charge
 * record (QuotaLedger with a book) and a lifetime (artifactExpiry), and `sweep` deletes the
 * expired ones and releases their charge. Work per pass is bounded (SWEEP_CHECKS_PER_PASS records
 * from a cursor that wraps around, SWEEP_DELETIONS_PER_PASS deletions). Each deletion unlinks the
 * file first, then drops the record and releases the bytes: a crash between the two leaves a
 * record with no file, which the ledger drops at the next start (QuotaLedger reconcile).
 *
 * `hold` keeps ids a submission is checking (before its job record names them) from a sweep.
 * Time is passed in (`now`, unix s, the clock of the job records).
 */
export class ArtifactSweeper {
  private cursor = '';
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
   * One pass at time `now` (unix s): deletes what expired among the next SWEEP_CHECKS_PER_PASS
   * charge records. A file that cannot be removed (not ENOENT) is left, with its record, for the
   * next pass. Never throws for one artifact; a database failure ends the pass (thrown).
   */
  sweep(now: number): SweepResult {
    for (const [k, until] of this.held) if (until <= now) this.held.delete(k);
    const page = this.db.artifactChargesAfter(this.cursor, SWEEP_CHECKS_PER_PASS);
    this.cursor = page.length < SWEEP_CHECKS_PER_PASS ? '' : page[page.length - 1]!.artifactId;
    const result: SweepResult = { checked: page.length, deleted: 0, freedBytes: 0 };
    for (const c of page) {
      if (result.deleted >= SWEEP_DELETIONS_PER_PASS) {
        // Resume here next pass.
        this.cursor = prev(c.artifactId);
        break;
      }
      if (this.held.has(c.artifactId)) continue;
      const expiry = artifactExpiry(c, this.db.artifactHolders(c.artifactId), this.retention);
      if (expiry === undefined || now < expiry) continue;
      try {
        // Synchronous, with the check above: no submission's check of the file runs in between.
        unlinkSync(this.store.path(c.artifactId));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') continue;
      }
      result.freedBytes += this.quota.forget(c.artifactId);
      result.deleted++;
    }
    return result;
  }
}

/** The id just before `id` in the cursor's order (so a pass resumes at `id` itself). */
function prev(id: string): string {
  return id.slice(0, -1);
}
