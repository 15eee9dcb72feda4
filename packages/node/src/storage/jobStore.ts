import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorCode, Hex, WorkProofJson } from '@firn/core';

export type JobRecordStatus = 'accepted' | 'claimed' | 'running' | 'proved' | 'failed';

/** What the host records about a job: public facts and ciphertext references only. */
export interface JobRecord {
  jobId: Hex;
  status: JobRecordStatus;
  inputs: Hex[];
  createdAt: number;
  updatedAt: number;
  error?: { code: ErrorCode; message: string };
  outputs?: { role: string; artifactId: Hex; contentType: string; size: number }[];
  proof?: WorkProofJson;
  /** The enclave's channel response (base64 ciphertext). */
  response?: string;
  /** Inference sessions: the preimage of the proof's outputCommitment (served with the result). */
  sessionOpening?: { salt: Hex; count: string; requestsHash: Hex; responsesHash: Hex };
  txs?: Record<string, Hex>;
}

/** Job records as JSON files under the data dir, written atomically (temp file, then rename). */
export class JobStore {
  readonly dir: string;
  constructor(dataDir: string) {
    this.dir = join(dataDir, 'jobs');
    mkdirSync(this.dir, { recursive: true });
  }

  private path(jobId: Hex): string {
    if (!/^0x[0-9a-f]{64}$/.test(jobId)) throw new Error('jobId must be lowercase 32-byte hex');
    return join(this.dir, `${jobId.slice(2)}.json`);
  }

  get(jobId: Hex): JobRecord | undefined {
    try {
      return JSON.parse(readFileSync(this.path(jobId), 'utf8')) as JobRecord;
    } catch {
      return undefined;
    }
  }

  put(r: JobRecord): void {
    const p = this.path(r.jobId);
    writeFileSync(`${p}.tmp`, JSON.stringify(r, null, 1), { mode: 0o600 });
    renameSync(`${p}.tmp`, p);
  }

  update(jobId: Hex, patch: Partial<JobRecord>, now: number): JobRecord {
    const cur = this.get(jobId);
    if (!cur) throw new Error('no such job record');
    const next = { ...cur, ...patch, updatedAt: now };
    this.put(next);
    return next;
  }

  list(): Hex[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => `0x${f.slice(0, -5)}` as Hex);
  }
}
