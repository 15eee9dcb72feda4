import type { Hex } from '@firn/core';
import type { JobRecord, JobRecordStatus } from './jobRecord.ts';
import { NodeDb } from './nodeDb.ts';

// The record's type lives in jobRecord.ts (nodeDb.ts reads it too, without importing this file).
export type { JobRecord, JobRecordStatus } from './jobRecord.ts';

/**
 * Job records in the node's SQLite database (NodeDb), keyed by job id. Writes raise
 * E_STORAGE_FULL on a full disk.
 */
export class JobStore {
  readonly db: NodeDb;
  constructor(dataDirOrDb: string | NodeDb) {
    this.db = typeof dataDirOrDb === 'string' ? new NodeDb(dataDirOrDb) : dataDirOrDb;
  }

  private check(jobId: Hex): Hex {
    if (!/^0x[0-9a-f]{64}$/.test(jobId)) throw new Error('jobId must be lowercase 32-byte hex');
    return jobId;
  }

  get(jobId: Hex): JobRecord | undefined {
    return this.db.getJob(this.check(jobId));
  }

  put(r: JobRecord): void {
    this.db.putJob({ ...r, jobId: this.check(r.jobId) });
  }

  update(jobId: Hex, patch: Partial<JobRecord>, now: number): JobRecord {
    const cur = this.get(jobId);
    if (!cur) throw new Error('no such job record');
    const next = { ...cur, ...patch, updatedAt: now };
    this.put(next);
    return next;
  }

  list(): Hex[] {
    return this.db.listJobs();
  }

  withStatus(status: JobRecordStatus): JobRecord[] {
    return this.db.jobsWithStatus(status);
  }
}
