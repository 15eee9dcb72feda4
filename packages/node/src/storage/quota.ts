import { readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chargedBytes, FirnError, type Hex, STORAGE_BLOCK_BYTES } from '@firn/core';
import type { NodeDb } from './nodeDb.ts';

/** The per-artifact charge records a ledger keeps in the node's database (decision 1603). */
export type ChargeBook = Pick<
  NodeDb,
  | 'putArtifactCharge'
  | 'artifactCharge'
  | 'dropArtifactCharge'
  | 'dropArtifactCharges'
  | 'artifactChargesAfter'
>;

/** Where a ledger records each stored artifact's charge, and the clock it stamps them with. */
export interface QuotaLedgerBook {
  /** The node's database (artifact_charges). */
  book: ChargeBook;
  /** The node's clock, unix seconds (the job records' clock: chain time on a node). */
  now: () => number;
}

const ARTIFACT_FILE = /^[0-9a-f]{64}$/;

/** Disk quotas of the artifact store (docs/api.md, "Limits"). */
export interface StorageQuotas {
  /** Bytes one uploader address may have stored here. Default 4 GiB. */
  perAddressBytes: number;
  /** Bytes of artifacts (uploads and job outputs) the node stores in all. Default 32 GiB. */
  totalBytes: number;
}

export const DEFAULT_STORAGE_QUOTAS: StorageQuotas = Object.freeze({
  perAddressBytes: 4 * 1024 ** 3,
  totalBytes: 32 * 1024 ** 3,
});

const MAX_LEDGER_BYTES = 16 * 1024 * 1024;

// The storage block and a file's charge are defined in @firn/core: the enclave counts a job's
// outputs against its declared bound in the same unit (decision 1690).
export { chargedBytes, STORAGE_BLOCK_BYTES };

/** Bytes reserved for one artifact (QuotaLedger.reserve): charge them once stored, or release them. */
export interface QuotaReservation {
  /**
   * Free the reservation and, when `charged` (newly stored as artifact `id`), charge the `stored`
   * bytes (in whole blocks, at most the reservation). Only the first commit or release counts.
   */
  commit: (charged: boolean, stored?: number, id?: Hex) => void;
  /** Free the reservation (a failure); harmless after a commit. */
  release: () => void;
}

/** A job's output bound reserved before its claim (QuotaLedger.reserveOutputs, decision 1690). */
export interface OutputReservation {
  /** Charged bytes of the bound not yet taken by an output. */
  readonly left: number;
  /**
   * The reservation one output of `bytes` sealed bytes (0: already stored) is stored under, taken
   * from the bound. Throws E_TOO_LARGE (a declared bound exceeded) or E_QUOTA_EXCEEDED.
   */
  output: (bytes: number, what: string) => QuotaReservation;
  /** Free what is left of the bound (idempotent). */
  release: () => void;
}

/**
 * Who stored how much. An upload reserves its declared size against the uploader's quota and the
 * node's total before a byte is written, and the reservation is released when the upload fails
 * or turns out to be a duplicate; a stored artifact is charged to its first uploader (a fetched
 * input or a job's output: to the job's requester), the bytes actually stored. The usage per
 * address is persisted (data dir `quota.json`); the total is re-measured from the store at start.
 * Exceeding either quota is E_QUOTA_EXCEEDED (HTTP 413) with the numbers in `details`.
 *
 * With a `book` (the node's database, decision 1603) each stored artifact's charge is recorded
 * (owner, bytes, time) so retention can delete it and give the bytes back (`forget`); the usage
 * per address is then the sum of those records, and at start the records and the files are
 * reconciled: a record whose file is gone is dropped (its bytes released), a file with no record
 * is recorded with no owner (counted in the total, deleted like an unnamed upload). So a crash
 * between a file's unlink and its record's removal, in either order, leaves the ledger and the
 * disk agreeing after the restart. `quota.json` is then neither read nor written.
 */
export class QuotaLedger {
  private readonly file: string;
  private readonly used = new Map<string, number>();
  private readonly reserved = new Map<string, number>();
  private reservedTotal = 0;
  private storedTotal: number;

  private readonly book: QuotaLedgerBook | undefined;

  constructor(
    dataDir: string,
    artifactDir: string,
    readonly quotas: StorageQuotas = DEFAULT_STORAGE_QUOTAS,
    book?: QuotaLedgerBook,
  ) {
    this.file = join(dataDir, 'quota.json');
    this.book = book;
    this.storedTotal = 0;
    if (book !== undefined) {
      this.reconcile(artifactDir, book);
      return;
    }
    try {
      const text = readFileSync(this.file, 'utf8');
      if (text.length <= MAX_LEDGER_BYTES) {
        const o = JSON.parse(text) as { used?: Record<string, unknown> };
        for (const [k, v] of Object.entries(o.used ?? {}))
          if (/^0x[0-9a-f]{40}$/.test(k) && typeof v === 'number' && Number.isSafeInteger(v) && v > 0)
            this.used.set(k, v);
      }
    } catch {
      // First start, or an unreadable ledger: start from zero (the total below is still measured).
    }
    this.storedTotal = 0;
    for (const f of readdirSync(artifactDir)) {
      try {
        this.storedTotal += chargedBytes(statSync(join(artifactDir, f)).size);
      } catch {}
    }
  }

  /** Match the charge records to the files (see the class docs); sets `used` and the total. */
  private reconcile(artifactDir: string, { book, now }: QuotaLedgerBook): void {
    // One listing and one stat per file (the total is measured from the same sizes).
    const files = new Map<string, number>();
    for (const f of readdirSync(artifactDir)) {
      try {
        const size = statSync(join(artifactDir, f)).size;
        this.storedTotal += chargedBytes(size);
        if (ARTIFACT_FILE.test(f)) files.set(`0x${f}`, size);
      } catch {}
    }
    let after = '';
    for (;;) {
      const page = book.artifactChargesAfter(after, 1024);
      for (const c of page) {
        if (!files.has(c.artifactId)) {
          // Best effort (a full disk must not stop the node): the record is not counted either way.
          try {
            book.dropArtifactCharge(c.artifactId);
          } catch {
            this.persistFailures++;
          }
          continue;
        }
        files.delete(c.artifactId);
        if (c.owner !== null) this.used.set(c.owner, this.usedBy(c.owner) + c.charged);
      }
      if (page.length < 1024) break;
      after = page[page.length - 1]!.artifactId;
    }
    const at = now();
    for (const [id, size] of files) {
      try {
        book.putArtifactCharge({
          artifactId: id as Hex,
          owner: null,
          charged: chargedBytes(size),
          storedAt: at,
        });
      } catch {
        // A full disk: recorded at a later start; counted in the total meanwhile.
        this.persistFailures++;
      }
    }
  }

  /**
   * The artifact `id` was deleted from the store: its recorded charge is dropped and its bytes
   * released from its owner and the total. Returns the bytes released (0 without a record or a book).
   */
  forget(id: Hex): number {
    return this.forgetAll([id]);
  }

  /**
   * The artifacts `ids` were deleted from the store: their records are dropped in one transaction
   * and, once it committed, their bytes released (never before: a failed commit releases nothing,
   * and the records, swept again, are released once). Returns the bytes released (0 without a book).
   * Throws what NodeDb.dropArtifactCharges throws.
   */
  forgetAll(ids: readonly Hex[]): number {
    if (this.book === undefined || ids.length === 0) return 0;
    let freed = 0;
    for (const c of this.book.book.dropArtifactCharges(ids)) {
      if (c.owner !== null) {
        const left = this.usedBy(c.owner) - c.charged;
        if (left > 0) this.used.set(c.owner, left);
        else this.used.delete(c.owner);
      }
      this.storedTotal = Math.max(0, this.storedTotal - c.charged);
      freed += c.charged;
    }
    return freed;
  }

  /** Bytes charged to `address` (stored, not counting reservations). */
  usedBy(address: string): number {
    return this.used.get(address.toLowerCase()) ?? 0;
  }

  /** Bytes stored in all. */
  get total(): number {
    return this.storedTotal;
  }

  /**
   * Check that `bytes` more bytes (charged in whole blocks, chargedBytes) that `address` would make
   * the node store fit in its quota and the node's total, counting what is stored and reserved now;
   * nothing is reserved. Returns the charged size. Throws E_QUOTA_EXCEEDED (HTTP 413) naming the
   * quota crossed, the bytes in use and needed (`details: {size, used, limit, quota}`) and how the
   * operator raises it; `what` names the bytes in the message.
   */
  check(address: string, bytes: number, what = 'this upload'): number {
    const key = address.toLowerCase();
    // Charged in whole blocks (chargedBytes): what the file takes on disk, not its byte count.
    const size = chargedBytes(bytes);
    const shown =
      bytes === size
        ? `${size} bytes`
        : `${bytes} bytes, charged as ${size}: whole ${STORAGE_BLOCK_BYTES}-byte blocks`;
    const mine = this.usedBy(key) + (this.reserved.get(key) ?? 0);
    if (mine + size > this.quotas.perAddressBytes)
      throw new FirnError(
        'E_QUOTA_EXCEEDED',
        `${what} (${shown}) would take ${key} over its storage quota of ${this.quotas.perAddressBytes} bytes (${mine} in use); the node's operator raises it with the quotas.perAddressBytes option (firn node start --quota-per-address)`,
        { details: { size, used: mine, limit: this.quotas.perAddressBytes, quota: 'perAddressBytes' } },
      );
    this.checkTotal(size, what, shown);
    return size;
  }

  /**
   * Reserve `bytes` bytes (charged in whole blocks, chargedBytes) that `address` is about to make the node store (an upload, an input
   * fetched from the shared artifact store for its job); throws E_QUOTA_EXCEEDED (HTTP 413) naming
   * the limit that would be crossed and how an operator raises it (see `check`). `what` names the
   * bytes in the message ('this upload', 'input artifact 0x..'). Returns commit (charge `address` the `stored`
   * bytes, default `size`, when `charged`, i.e. they were newly stored as artifact `id`: with a
   * book the charge is recorded under `id`) and release (free the reservation: a failure).
   */
  reserve(address: string, bytes: number, what = 'this upload'): QuotaReservation {
    const key = address.toLowerCase();
    const size = this.check(key, bytes, what);
    this.addReserved(key, size);
    return this.piece(key, size, bytes);
  }

  /**
   * Reserve a job's output bound (decision 1690): `bound` bytes (charged in whole blocks) of
   * `address`'s quota and the node's total, checked as `reserve` (E_QUOTA_EXCEEDED). Each output
   * is then stored under `output(size, what)`, which takes its charged size out of what is left of
   * the bound, with no new quota check. When the outputs take more than the bound: with `strict`
   * (the job declared it) `output` throws E_TOO_LARGE naming the bound and stores nothing; without
   * (a job that declared none: the bound is the one-block allowance of decision 1675) the excess
   * is reserved as `reserve` would (E_QUOTA_EXCEEDED when it does not fit). `release` frees what is
   * left; call it on every end (idempotent).
   */
  reserveOutputs(address: string, bound: number, what: string, strict: boolean): OutputReservation {
    const key = address.toLowerCase();
    const size = this.check(key, bound, what);
    this.addReserved(key, size);
    let left = size;
    return {
      get left() {
        return left;
      },
      output: (bytes: number, whatOut: string) => {
        // An output already stored (size 0 here) is charged nothing and takes nothing.
        if (bytes === 0) return { commit: () => undefined, release: () => undefined };
        const c = chargedBytes(bytes);
        if (c > left) {
          if (strict)
            throw new FirnError(
              'E_TOO_LARGE',
              `${whatOut} (${bytes} bytes, charged as ${c}) exceeds what is left of the job's declared output bound (${left} of ${size} bytes)`,
              { details: { size: c, limit: left, bound: size } },
            );
          const extra = c - left;
          this.check(key, extra, whatOut);
          this.addReserved(key, extra);
          left = 0;
          return this.piece(key, c, bytes);
        }
        left -= c;
        return this.piece(key, c, bytes);
      },
      release: () => {
        if (left > 0) this.dropReserved(key, left);
        left = 0;
      },
    };
  }

  private addReserved(key: string, size: number): void {
    this.reserved.set(key, (this.reserved.get(key) ?? 0) + size);
    this.reservedTotal += size;
  }

  private dropReserved(key: string, size: number): void {
    const left = (this.reserved.get(key) ?? size) - size;
    if (left <= 0) this.reserved.delete(key);
    else this.reserved.set(key, left);
    this.reservedTotal -= size;
  }

  /** A reservation of `size` charged bytes of `key` already counted in `reserved` (see `reserve`). */
  private piece(key: string, size: number, bytes: number): QuotaReservation {
    let done = false;
    const unreserve = () => {
      if (done) return false;
      done = true;
      this.dropReserved(key, size);
      return true;
    };
    return {
      commit: (charged: boolean, stored = bytes, id?: Hex) => {
        if (!unreserve() || !charged) return;
        // The bytes stored (at most the reservation: a write is capped at it), so the ledger
        // agrees with the disk even when a source announced more than it sent.
        const charge = Math.min(size, chargedBytes(stored));
        this.used.set(key, this.usedBy(key) + charge);
        this.storedTotal += charge;
        if (this.book === undefined) {
          this.persist();
          return;
        }
        if (id === undefined) return;
        try {
          this.book.book.putArtifactCharge({
            artifactId: id,
            owner: key,
            charged: charge,
            storedAt: this.book.now(),
          });
        } catch {
          // A full disk: the file is recorded with no owner at the next start (reconcile).
          this.persistFailures++;
        }
      },
      release: () => {
        unreserve();
      },
    };
  }

  /**
   * Check that `size` more charged bytes (chargedBytes) the node stores fit in the node's
   * total; throws E_QUOTA_EXCEEDED naming the limit. Count them with addStored once stored.
   */
  checkTotal(size: number, what = 'this upload', shown = `${size} bytes`): void {
    const all = this.storedTotal + this.reservedTotal;
    if (all + size > this.quotas.totalBytes)
      throw new FirnError(
        'E_QUOTA_EXCEEDED',
        `${what} (${shown}) would take the node over its storage quota of ${this.quotas.totalBytes} bytes (${all} in use); the node's operator raises it with the quotas.totalBytes option (firn node start --quota-total)`,
        { details: { size, used: all, limit: this.quotas.totalBytes, quota: 'totalBytes' } },
      );
  }

  /** Count bytes the node stored for itself (job outputs) in the total. */
  addStored(size: number): void {
    this.storedTotal += chargedBytes(size);
  }

  /** Best effort: a ledger that cannot be written (full disk) keeps counting in memory. */
  private persist(): void {
    const tmp = `${this.file}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify({ used: Object.fromEntries(this.used) }), { mode: 0o600 });
      renameSync(tmp, this.file);
    } catch {
      this.persistFailures++;
    }
  }

  /** Ledger writes that failed (full disk); the in-memory counts stay right. */
  persistFailures = 0;
}
