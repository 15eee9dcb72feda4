import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { FirnError, type Hex } from '@firn/core';
import type { JobRecord } from './jobRecord.ts';

/** Most progress events kept per job (more are dropped, and the end marker still counts what was kept). */
export const MAX_EVENTS_PER_JOB = 10_000;
/** Largest progress event message kept, characters (base64 channel ciphertext). */
export const MAX_EVENT_MESSAGE_CHARS = 1_000_000;
/** Largest job record accepted back from the database, characters (a corrupt row fails closed). */
const MAX_RECORD_CHARS = 64 * 1024 * 1024;

/** Session metadata the host keeps (no key, no plaintext): enough to fail or prove it after a crash. */
export interface SessionMeta {
  jobId: Hex;
  /** Host time the session opened, ms. */
  openedAt: number;
  /** Host time of the last accepted request, ms. */
  lastUsed: number;
  /** Requests the enclave accepted. */
  requests: number;
  state: 'open' | 'closing' | 'closed';
}

/**
 * Who a stored artifact is charged to and since when (docs/decisions/1603): `owner` is the
 * lowercase address charged (`null`: a file found in the store with no record, e.g. from an
 * earlier version or a crash between the link and this record: counted in the node's total only),
 * `charged` the bytes charged (whole blocks, quota.ts chargedBytes), `storedAt` the node's clock
 * (unix s) at the upload (or, for a file found with no record, at the start that found it).
 */
export interface ArtifactCharge {
  artifactId: Hex;
  owner: string | null;
  charged: number;
  storedAt: number;
}

/** A job record that names an artifact (as an input or an output): its status and last update (unix s). */
export interface ArtifactHolder {
  jobId: Hex;
  status: JobRecord['status'];
  updatedAt: number;
  /** Whether the job was ever claimed on chain (its record has a claim transaction). */
  claimed?: boolean;
}

/**
 * True for an error that means the disk (or the database file's filesystem) is full:
 * ENOSPC / EDQUOT from node:fs, SQLITE_FULL from SQLite.
 */
export function isDiskFull(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL' || code === 'E_STORAGE_FULL';
}

/** The typed error for a full disk (HTTP 507); `what` names what could not be stored. */
export function storageFull(what: string, cause?: unknown): FirnError {
  return new FirnError(
    'E_STORAGE_FULL',
    `the node's disk is full: could not store ${what}; retry later or on another node`,
    cause === undefined ? {} : { cause },
  );
}

/** Run a storage write; a full disk becomes E_STORAGE_FULL, anything else E_INTERNAL (no path or text leaks). */
export function storageWrite<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof FirnError) throw e;
    if (isDiskFull(e)) throw storageFull(what, e);
    throw new FirnError('E_INTERNAL', `could not store ${what}`, { cause: e });
  }
}

/**
 * The node's persistent state in one SQLite database (`<dataDir>/node.db`, WAL mode,
 * docs/decisions/1040-job-events-wire-and-node-persistence.md): job records, their progress events
 * with sequence numbers, session metadata and named chain cursors. The host stores public facts
 * and ciphertext only. Every write raises E_STORAGE_FULL (507) on a full disk and E_INTERNAL on any
 * other failure; reads of a corrupt row fail closed (the row is treated as absent).
 *
 * On first open, job records left as JSON files by earlier versions (`<dataDir>/jobs/*.json`) are
 * imported and the folder renamed to `jobs.imported`.
 */
export class NodeDb {
  readonly db: Database.Database;
  private readonly st: {
    getJob: Database.Statement;
    putJob: Database.Statement;
    listJobs: Database.Statement;
    listByStatus: Database.Statement;
    addEvent: Database.Statement;
    countEvents: Database.Statement;
    eventsAfter: Database.Statement;
    putSession: Database.Statement;
    getSession: Database.Statement;
    listSessions: Database.Statement;
    getCursor: Database.Statement;
    putCursor: Database.Statement;
    putRef: Database.Statement;
    putCharge: Database.Statement;
    getCharge: Database.Statement;
    dropCharge: Database.Statement;
    dropReturning: Database.Statement;
    chargesFrom: Database.Statement;
    dueOfOwner: Database.Statement;
    dueUnowned: Database.Statement;
    nextOfOwner: Database.Statement;
    nextUnowned: Database.Statement;
    holders: Database.Statement;
    queueHead: Database.Statement;
    queueSet: Database.Statement;
    queueDrop: Database.Statement;
    queueRearm: Database.Statement;
    getState: Database.Statement;
    putState: Database.Statement;
  };

  constructor(readonly dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    this.db = storageWrite('the node database', () => {
      const db = new Database(join(dataDir, 'node.db'));
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 2000');
      db.exec(`
        CREATE TABLE IF NOT EXISTS jobs (
          job_id TEXT PRIMARY KEY,
          status TEXT NOT NULL,
          record TEXT NOT NULL,
          updated_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
        CREATE TABLE IF NOT EXISTS events (
          job_id TEXT NOT NULL,
          seq INTEGER NOT NULL,
          message TEXT NOT NULL,
          PRIMARY KEY (job_id, seq)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS sessions (
          job_id TEXT PRIMARY KEY,
          meta TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS cursors (
          name TEXT PRIMARY KEY,
          block INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS artifact_charges (
          artifact_id TEXT PRIMARY KEY,
          owner TEXT,
          charged INTEGER NOT NULL,
          stored_at INTEGER NOT NULL
        );
        -- The sweep's walk (storage/artifactRetention.ts): owners in turn, each one's records oldest
        -- first. IF NOT EXISTS: a database from before it gets it when opened.
        CREATE INDEX IF NOT EXISTS artifact_charges_owner_age ON artifact_charges(owner, stored_at, artifact_id);
        -- The sweep's queue (storage/artifactRetention.ts, decision 1640): one row per owner ('' for
        -- the records with no owner) with the time from which it has something to look at, on the
        -- stored_at scale (due once at <= now - uploadSeconds), so a sweep seeks only owners with
        -- something due. A new record lowers its owner's time (the triggers); gen counts the
        -- lowerings, so the sweep's own update of a row it read loses to one that came between.
        CREATE TABLE IF NOT EXISTS artifact_sweep_queue (
          owner TEXT PRIMARY KEY,
          at INTEGER NOT NULL,
          seq INTEGER NOT NULL DEFAULT 0,
          gen INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS artifact_sweep_queue_due ON artifact_sweep_queue(at, seq, owner);
        CREATE TRIGGER IF NOT EXISTS artifact_charges_queued AFTER INSERT ON artifact_charges BEGIN
          INSERT INTO artifact_sweep_queue (owner, at) VALUES (coalesce(new.owner, ''), new.stored_at)
            ON CONFLICT(owner) DO UPDATE SET gen = gen + (excluded.at < at), at = min(at, excluded.at);
        END;
        CREATE TRIGGER IF NOT EXISTS artifact_charges_requeued AFTER UPDATE OF owner, stored_at ON artifact_charges BEGIN
          INSERT INTO artifact_sweep_queue (owner, at) VALUES (coalesce(new.owner, ''), new.stored_at)
            ON CONFLICT(owner) DO UPDATE SET gen = gen + (excluded.at < at), at = min(at, excluded.at);
        END;
        CREATE TABLE IF NOT EXISTS artifact_sweep_state (
          name TEXT PRIMARY KEY,
          value TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS artifact_refs (
          artifact_id TEXT NOT NULL,
          job_id TEXT NOT NULL,
          PRIMARY KEY (artifact_id, job_id)
        ) WITHOUT ROWID;
      `);
      return db;
    });
    const p = (sql: string) => this.db.prepare(sql);
    this.st = {
      getJob: p('SELECT record FROM jobs WHERE job_id = ?'),
      putJob: p(
        'INSERT INTO jobs (job_id, status, record, updated_at) VALUES (@id, @status, @record, @at) ' +
          'ON CONFLICT(job_id) DO UPDATE SET status = excluded.status, record = excluded.record, updated_at = excluded.updated_at',
      ),
      listJobs: p('SELECT job_id FROM jobs ORDER BY updated_at'),
      listByStatus: p('SELECT record FROM jobs WHERE status = ? ORDER BY updated_at'),
      addEvent: p(
        'INSERT INTO events (job_id, seq, message) SELECT @id, COALESCE(MAX(seq) + 1, 0), @message FROM events WHERE job_id = @id RETURNING seq',
      ),
      // seq runs 0, 1, 2, ... per job (addEvent), so the count is MAX(seq) + 1: one index lookup,
      // where COUNT(*) would read the job's whole history (its messages included) on every append.
      countEvents: p('SELECT COALESCE(MAX(seq) + 1, 0) AS n FROM events WHERE job_id = ?'),
      eventsAfter: p('SELECT seq, message FROM events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?'),
      putSession: p(
        'INSERT INTO sessions (job_id, meta) VALUES (?, ?) ON CONFLICT(job_id) DO UPDATE SET meta = excluded.meta',
      ),
      getSession: p('SELECT meta FROM sessions WHERE job_id = ?'),
      listSessions: p('SELECT meta FROM sessions'),
      getCursor: p('SELECT block FROM cursors WHERE name = ?'),
      putCursor: p(
        'INSERT INTO cursors (name, block) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET block = excluded.block',
      ),
      putRef: p('INSERT OR IGNORE INTO artifact_refs (artifact_id, job_id) VALUES (?, ?)'),
      putCharge: p(
        'INSERT INTO artifact_charges (artifact_id, owner, charged, stored_at) VALUES (@id, @owner, @charged, @at) ' +
          'ON CONFLICT(artifact_id) DO UPDATE SET owner = excluded.owner, charged = excluded.charged, stored_at = excluded.stored_at',
      ),
      getCharge: p(
        'SELECT artifact_id, owner, charged, stored_at FROM artifact_charges WHERE artifact_id = ?',
      ),
      dropCharge: p('DELETE FROM artifact_charges WHERE artifact_id = ?'),
      dropReturning: p(
        'DELETE FROM artifact_charges WHERE artifact_id = ? RETURNING artifact_id, owner, charged, stored_at',
      ),
      chargesFrom: p(
        'SELECT artifact_id, owner, charged, stored_at FROM artifact_charges WHERE artifact_id > ? ORDER BY artifact_id LIMIT ?',
      ),
      holders: p(
        "SELECT j.job_id, j.status, j.updated_at, json_extract(j.record, '$.txs.claim') IS NOT NULL AS claimed " +
          'FROM artifact_refs r JOIN jobs j ON j.job_id = r.job_id WHERE r.artifact_id = ?',
      ),
      // These four walk artifact_charges_owner_age: one seek, then rows in index order.
      dueOfOwner: p(
        'SELECT artifact_id, owner, charged, stored_at FROM artifact_charges ' +
          'WHERE owner = @owner AND stored_at <= @until AND (stored_at, artifact_id) > (@at, @id) ' +
          'ORDER BY stored_at, artifact_id LIMIT @limit',
      ),
      dueUnowned: p(
        'SELECT artifact_id, owner, charged, stored_at FROM artifact_charges ' +
          'WHERE owner IS NULL AND stored_at <= @until AND (stored_at, artifact_id) > (@at, @id) ' +
          'ORDER BY stored_at, artifact_id LIMIT @limit',
      ),
      nextOfOwner: p(
        'SELECT stored_at FROM artifact_charges WHERE owner = ? AND stored_at > ? ORDER BY stored_at LIMIT 1',
      ),
      nextUnowned: p(
        'SELECT stored_at FROM artifact_charges WHERE owner IS NULL AND stored_at > ? ORDER BY stored_at LIMIT 1',
      ),
      // artifact_sweep_queue_due: one seek to the owner first in line among those with something due.
      queueHead: p(
        'SELECT owner, at, gen FROM artifact_sweep_queue WHERE at <= ? ORDER BY at, seq, owner LIMIT 1',
      ),
      queueSet: p('UPDATE artifact_sweep_queue SET at = @at, seq = @seq WHERE owner = @owner AND gen = @gen'),
      queueDrop: p('DELETE FROM artifact_sweep_queue WHERE owner = @owner AND gen = @gen'),
      queueRearm: p(
        "INSERT INTO artifact_sweep_queue (owner, at) SELECT coalesce(owner, ''), stored_at FROM artifact_charges " +
          'WHERE artifact_id = ? ON CONFLICT(owner) DO UPDATE SET gen = gen + 1, at = min(at, excluded.at)',
      ),
      getState: p('SELECT value FROM artifact_sweep_state WHERE name = ?'),
      putState: p(
        'INSERT INTO artifact_sweep_state (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value',
      ),
    };
    this.importJsonRecords();
    this.indexArtifactRefs();
    this.queueArtifactOwners();
  }

  /**
   * Once per database (user_version 1 -> 2): put every owner of the records already stored in the
   * sweep's queue at its oldest record's time (the triggers keep it from then on). One pass over
   * artifact_charges_owner_age.
   */
  private queueArtifactOwners(): void {
    if ((this.db.pragma('user_version', { simple: true }) as number) >= 2) return;
    storageWrite('the sweep queue', () =>
      this.db.transaction(() => {
        this.rebuildSweepQueue();
        this.db.pragma('user_version = 2');
      })(),
    );
  }

  /**
   * Once per database (user_version 0 -> 1): list the artifacts each job record already stored
   * names (inputs and outputs) in artifact_refs, which putJob keeps from then on, so retention
   * (storage/artifactRetention.ts) never takes a job's artifact for an unnamed one.
   */
  private indexArtifactRefs(): void {
    if ((this.db.pragma('user_version', { simple: true }) as number) >= 1) return;
    storageWrite('the artifact index', () =>
      this.db.transaction(() => {
        // Paged (a statement cannot be iterated while the same connection writes).
        const page = this.db.prepare(
          'SELECT rowid AS n, record FROM jobs WHERE rowid > ? ORDER BY rowid LIMIT 256',
        );
        for (let after = 0; ; ) {
          const rows = page.all(after) as { n: number; record: string }[];
          for (const row of rows) {
            const r = parseRow<JobRecord>(row.record);
            if (r) this.putRefs(r);
          }
          if (rows.length < 256) break;
          after = rows[rows.length - 1]!.n;
        }
        this.db.pragma('user_version = 1');
      })(),
    );
  }

  private putRefs(r: JobRecord): void {
    for (const id of namedIds(r)) this.st.putRef.run(id, r.jobId.toLowerCase());
  }

  private importJsonRecords(): void {
    const dir = join(this.dataDir, 'jobs');
    if (!existsSync(dir)) return;
    for (const f of readdirSync(dir)) {
      if (!/^[0-9a-f]{64}\.json$/.test(f)) continue;
      try {
        const r = JSON.parse(readFileSync(join(dir, f), 'utf8')) as JobRecord;
        if (!this.getJob(r.jobId)) this.putJob(r);
      } catch {
        // An unreadable old record is skipped; it was never served as valid either.
      }
    }
    storageWrite('the imported job records', () => renameSync(dir, `${dir}.imported`));
  }

  getJob(jobId: Hex): JobRecord | undefined {
    const row = this.st.getJob.get(jobId) as { record: string } | undefined;
    return row ? parseRow<JobRecord>(row.record) : undefined;
  }

  /**
   * Store a job record, and index the artifacts it names (inputs, outputs) in the same
   * transaction: a stored record never names an artifact that retention does not see as held.
   */
  putJob(r: JobRecord): void {
    storageWrite('the job record', () =>
      this.db.transaction(() => {
        this.st.putJob.run({
          id: r.jobId,
          status: r.status,
          record: JSON.stringify(r),
          at: r.updatedAt,
        });
        this.putRefs(r);
        // A job failed before any claim keeps nothing (artifactExpiry): what it names may be due
        // again at once, though the sweep set it aside while the job was live (decision 1640).
        if (r.status === 'failed' && r.txs?.claim === undefined)
          for (const id of namedIds(r)) this.st.queueRearm.run(id);
      })(),
    );
  }

  /** Record (or replace) the charge of a stored artifact (ArtifactCharge). */
  putArtifactCharge(c: ArtifactCharge): void {
    storageWrite('the artifact charge', () =>
      this.st.putCharge.run({
        id: c.artifactId.toLowerCase(),
        owner: c.owner === null ? null : c.owner.toLowerCase(),
        charged: c.charged,
        at: c.storedAt,
      }),
    );
  }

  /** The charge of a stored artifact, or undefined when none is recorded. */
  artifactCharge(id: Hex): ArtifactCharge | undefined {
    const row = this.st.getCharge.get(id.toLowerCase()) as ChargeRow | undefined;
    return row ? chargeOf(row) : undefined;
  }

  /** Forget an artifact's charge (its file was deleted). */
  dropArtifactCharge(id: Hex): void {
    storageWrite('the artifact charge', () => this.st.dropCharge.run(id.toLowerCase()));
  }

  /**
   * Forget the charges of artifacts `ids` (their files were deleted) in one transaction: all or
   * none. Returns the charges dropped (an id with none recorded is skipped). Throws as every write
   * (E_STORAGE_FULL, E_INTERNAL), having dropped nothing.
   */
  dropArtifactCharges(ids: readonly Hex[]): ArtifactCharge[] {
    return storageWrite('the artifact charges', () =>
      this.db.transaction(() => {
        const dropped: ArtifactCharge[] = [];
        for (const id of ids) {
          const row = this.st.dropReturning.get(id.toLowerCase()) as ChargeRow | undefined;
          if (row !== undefined) dropped.push(chargeOf(row));
        }
        return dropped;
      })(),
    );
  }

  /** Up to `limit` charges with an artifact id after `after` (lowercase 0x hex; '' from the first), in id order. */
  artifactChargesAfter(after: string, limit: number): ArtifactCharge[] {
    return (this.st.chargesFrom.all(after, limit) as ChargeRow[]).map(chargeOf);
  }

  /**
   * The owner first in the sweep's queue among those with something to look at by `due` (unix s on
   * the stored_at scale: the sweep passes `now - uploadSeconds`), or undefined when none has: one
   * seek of artifact_sweep_queue_due, however many owners have nothing due. Order: the earliest
   * `at`, then `seq`, then the owner. `owner` null: the records with no owner. `gen` goes back to
   * setSweepQueue / dropSweepQueue (decision 1640).
   */
  sweepQueueHead(due: number): SweepQueueEntry | undefined {
    const row = this.st.queueHead.get(due) as
      | { owner: string; at: number | bigint; gen: number | bigint }
      | undefined;
    if (row === undefined) return undefined;
    return { owner: row.owner === '' ? null : row.owner, at: Number(row.at), gen: Number(row.gen) };
  }

  /**
   * Put `e.owner` back in the sweep's queue at `at` (stored_at scale), ordered among equal times by
   * `seq`; false (nothing written) when a record or rearmSweep lowered its time since `e` was read.
   */
  setSweepQueue(e: SweepQueueEntry, at: number, seq: number): boolean {
    const r = storageWrite('the sweep queue', () =>
      this.st.queueSet.run({ owner: e.owner ?? '', gen: e.gen, at, seq }),
    );
    return r.changes > 0;
  }

  /** Take `e.owner` out of the sweep's queue (it has no record left); false as for setSweepQueue. */
  dropSweepQueue(e: SweepQueueEntry): boolean {
    const r = storageWrite('the sweep queue', () =>
      this.st.queueDrop.run({ owner: e.owner ?? '', gen: e.gen }),
    );
    return r.changes > 0;
  }

  /**
   * The stored_at (unix s) of `owner`'s oldest record stored after `after`, or undefined (none):
   * when its next record falls due. One seek (artifact_charges_owner_age).
   */
  nextArtifactStoredAfter(owner: string | null, after: number): number | undefined {
    const row = (owner === null ? this.st.nextUnowned.get(after) : this.st.nextOfOwner.get(owner, after)) as
      | { stored_at: number | bigint }
      | undefined;
    return row === undefined ? undefined : Number(row.stored_at);
  }

  /**
   * The sweep's queue was built under `retention` (seconds, upload and output): when the stored
   * ones differ (the operator changed them), every owner is put back at its oldest record's time
   * (linear in owners, once per change), since the times the queue holds were reckoned with the
   * old values. Returns whether it reset.
   */
  syncSweepRetention(retention: { uploadSeconds: number; outputSeconds: number }): boolean {
    const want = `${retention.uploadSeconds}/${retention.outputSeconds}`;
    const had = this.st.getState.get('retention') as { value: string } | undefined;
    if (had?.value === want) return false;
    storageWrite('the sweep queue', () =>
      this.db.transaction(() => {
        if (had !== undefined) this.rebuildSweepQueue();
        this.st.putState.run('retention', want);
      })(),
    );
    return had !== undefined;
  }

  /** Every owner at its oldest record's time, none for an owner with no record (linear in owners). */
  private rebuildSweepQueue(): void {
    this.db.exec(`
      DELETE FROM artifact_sweep_queue;
      INSERT INTO artifact_sweep_queue (owner, at, gen)
        SELECT coalesce(owner, ''), min(stored_at), 1 FROM artifact_charges GROUP BY owner;
    `);
  }

  /**
   * Up to `limit` charges of `owner` (lowercase address; null: the records with no owner) stored
   * at or before `until` (unix s), strictly after the position `after` in (stored_at, artifact_id)
   * order (from the start: `{ storedAt: Number.MIN_SAFE_INTEGER, artifactId: '' }`), oldest first.
   * Reads only those rows (an index range of artifact_charges_owner_age), however many newer ones
   * the owner or others have. Used by the sweep (storage/artifactRetention.ts, decision 1603).
   */
  artifactChargesDue(
    owner: string | null,
    until: number,
    after: { storedAt: number; artifactId: string },
    limit: number,
  ): ArtifactCharge[] {
    const args = { until, at: after.storedAt, id: after.artifactId, limit };
    const rows = owner === null ? this.st.dueUnowned.all(args) : this.st.dueOfOwner.all({ ...args, owner });
    return (rows as ChargeRow[]).map(chargeOf);
  }

  /** The job records that name artifact `id` (inputs or outputs). */
  artifactHolders(id: Hex): ArtifactHolder[] {
    return (
      this.st.holders.all(id.toLowerCase()) as {
        job_id: Hex;
        status: JobRecord['status'];
        updated_at: number;
        claimed: number;
      }[]
    ).map((r) => ({
      jobId: r.job_id,
      status: r.status,
      updatedAt: Number(r.updated_at),
      claimed: r.claimed === 1,
    }));
  }

  listJobs(): Hex[] {
    return (this.st.listJobs.all() as { job_id: Hex }[]).map((r) => r.job_id);
  }

  jobsWithStatus(status: JobRecord['status']): JobRecord[] {
    return (this.st.listByStatus.all(status) as { record: string }[])
      .map((r) => parseRow<JobRecord>(r.record))
      .filter((r): r is JobRecord => r !== undefined);
  }

  /**
   * Append a progress event to a job; returns its sequence number (0, 1, 2, ... per job), or
   * undefined when the job already holds MAX_EVENTS_PER_JOB events or the message is too long.
   */
  appendEvent(jobId: Hex, message: string): number | undefined {
    if (message.length > MAX_EVENT_MESSAGE_CHARS) return undefined;
    if (this.eventCount(jobId) >= MAX_EVENTS_PER_JOB) return undefined;
    const row = storageWrite('a progress event', () => this.st.addEvent.get({ id: jobId, message })) as
      | { seq: number }
      | undefined;
    return row?.seq;
  }

  eventCount(jobId: Hex): number {
    return (this.st.countEvents.get(jobId) as { n: number }).n;
  }

  /** Events with seq > `after` in order, at most `limit`. */
  eventsAfter(jobId: Hex, after: number, limit = 1000): { seq: number; message: string }[] {
    return this.st.eventsAfter.all(jobId, after, limit) as { seq: number; message: string }[];
  }

  putSession(m: SessionMeta): void {
    storageWrite('the session metadata', () => this.st.putSession.run(m.jobId, JSON.stringify(m)));
  }

  getSession(jobId: Hex): SessionMeta | undefined {
    const row = this.st.getSession.get(jobId) as { meta: string } | undefined;
    return row ? parseRow<SessionMeta>(row.meta) : undefined;
  }

  sessions(): SessionMeta[] {
    return (this.st.listSessions.all() as { meta: string }[])
      .map((r) => parseRow<SessionMeta>(r.meta))
      .filter((m): m is SessionMeta => m !== undefined);
  }

  /** A named chain cursor (the next block to read), or undefined before the first save. */
  cursor(name: string): bigint | undefined {
    const row = this.st.getCursor.get(name) as { block: number | bigint } | undefined;
    return row === undefined ? undefined : BigInt(row.block);
  }

  setCursor(name: string, block: bigint): void {
    storageWrite('the chain cursor', () => this.st.putCursor.run(name, block));
  }

  /** A cheap write probe (for /healthz): false when the database cannot take a write now. */
  writable(): boolean {
    try {
      this.st.putCursor.run('__health', Date.now());
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

interface ChargeRow {
  artifact_id: string;
  owner: string | null;
  charged: number | bigint;
  stored_at: number | bigint;
}

/** One owner's place in the sweep's queue (NodeDb.sweepQueueHead). */
export interface SweepQueueEntry {
  /** Lowercase address; null: the records with no owner. */
  owner: string | null;
  /** From when (stored_at scale, unix s) it has something to look at. */
  at: number;
  /** Lowerings of `at` by records and job records so far (compare-and-set token). */
  gen: number;
}

/** The artifact ids (lowercase) a job record names: its inputs and outputs, well-formed ones only. */
function namedIds(r: JobRecord): string[] {
  const ids = [...(Array.isArray(r.inputs) ? r.inputs : []), ...(r.outputs ?? []).map((o) => o.artifactId)];
  return ids
    .filter((id) => typeof id === 'string' && /^0x[0-9a-fA-F]{64}$/.test(id))
    .map((id) => id.toLowerCase());
}

function chargeOf(r: ChargeRow): ArtifactCharge {
  return {
    artifactId: r.artifact_id as Hex,
    owner: r.owner,
    charged: Number(r.charged),
    storedAt: Number(r.stored_at),
  };
}

function parseRow<T>(text: string): T | undefined {
  if (text.length > MAX_RECORD_CHARS) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
