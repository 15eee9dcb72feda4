import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FirnDeployment, FirnJob } from '@firn/chain';
import { NodeApi } from '@firn/client';
import { type Hex, hexBytes } from '@firn/core';
import { addressOf as addressOfBytes } from '@firn/crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { RequestRateLimiter, UploadSlots } from '../../packages/node/src/http/limits.ts';
import { type JobApiOptions, JobService } from '../../packages/node/src/jobs/jobApi.ts';
import type { JobHost } from '../../packages/node/src/jobs/jobHost.ts';
import { createLogger } from '../../packages/node/src/logger.ts';
import { DEFAULT_ARTIFACT_RETENTION } from '../../packages/node/src/storage/artifactRetention.ts';
import { NodeDb } from '../../packages/node/src/storage/nodeDb.ts';
import { STORAGE_BLOCK_BYTES as K } from '../../packages/node/src/storage/quota.ts';

// The attack (red team): a job's output whose bytes are already stored here (the same content as
// an earlier upload: a deterministic job's known result, uploaded by anyone more than
// `uploadSeconds` ago and named by no job) is adopted without a new charge, so its charge record
// keeps the old upload's time and no job names it until the job record moves to `proving`. The
// node awaits between storing the outputs and writing that record (copying each output to the
// shared folder); a sweep tick landing there deletes the output as an expired upload. The job is
// then proved on chain with a result the node no longer holds (GET result: not found), and the
// verifiers and the requester cannot fetch it.
// Promise (decision 1603): the sweep never deletes a file a live or proved job needs.

const dir = mkdtempSync(join(tmpdir(), 'firn-retention-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const zero = `0x${'00'.repeat(20)}` as Hex;
// Made-up test keys (a repeated byte), never a real account's.
const ATTACKER_KEY = `0x${'a1'.repeat(32)}` as Hex; // a made-up test key
const VICTIM_KEY = `0x${'b2'.repeat(32)}` as Hex; // a made-up test key
const ENCLAVE_ID = `0x${'33'.repeat(32)}` as Hex;
const deployment = {
  chainId: 31337,
  registry: zero,
  verifierSet: zero,
  jobMarket: zero,
  dataLedger: zero,
  deployBlock: 0n,
} as FirnDeployment;

/** A node's JobService in `dataDir` on a clock the test moves; no chain (writes answer at once). */
function service(
  dataDir: string,
  clock: { now: number },
  quotas = { perAddressBytes: 16 * K, totalBytes: 64 * K },
  extra: Partial<JobApiOptions> = {},
) {
  let n = 0;
  const supervisor = Object.assign(new EventEmitter(), {
    // The enclave of every job writes one output of 3 blocks, distinct per job.
    call: async (method: string, args: { outputDir?: string }) => {
      if (method !== 'runJob') return {};
      const bytes = Buffer.alloc(3 * K, ++n);
      const path = join(args.outputDir!, 'result');
      writeFileSync(path, bytes);
      const artifactId = `0x${createHash('sha256').update(bytes).digest('hex')}`;
      return {
        outputs: [{ role: 'result', path, artifactId, contentType: 'application/octet-stream' }],
        proof: '{}',
        response: '0x',
      };
    },
  });
  const host = {
    opts: { dataDir },
    db: new NodeDb(dataDir),
    quotas,
    supervisor,
    identity: { enclaveId: ENCLAVE_ID },
    rateLimiter: new RequestRateLimiter(10_000),
    sessionRateLimiter: new RequestRateLimiter(10_000),
    uploadSlots: new UploadSlots(64, 64),
  } as unknown as JobHost;
  const svc = new JobService(host, {
    rpcUrl: 'http://127.0.0.1:9',
    operatorKey: `0x${'11'.repeat(32)}`, // a made-up test key
    deployment,
    logger: createLogger({}, { write: () => undefined }),
    now: () => clock.now,
    ...extra,
  });
  const s = svc as unknown as Record<string, unknown>;
  s.chain = async () => ({ hash: `0x${'44'.repeat(32)}` });
  // The proof stays kept (`proving`): the test moves the record to proved / finalized itself.
  s.submitKeptProof = async () => undefined;
  (svc.chainMonitor as unknown as { requireUp: () => Promise<void> }).requireUp = async () => undefined;
  // Every uploader holds a balance.
  (svc.clients.public as unknown as { getBalance: () => Promise<bigint> }).getBalance = async () => 1n;
  return svc;
}

/** PUT /v1/artifacts through JobService.upload with a signed intent: the status and error code. */
async function upload(svc: JobService, key: Hex, bytes: Uint8Array, clock: { now: number }) {
  const api = new NodeApi('http://node.invalid', 30_000, {
    requesterKey: key,
    scope: { chainId: deployment.chainId, jobMarket: deployment.jobMarket, enclaveId: ENCLAVE_ID },
    now: () => clock.now,
  });
  const req = Object.assign(Readable.from([Buffer.from(bytes)]), {
    headers: {
      'content-type': 'application/octet-stream',
      'content-length': String(bytes.length),
      ...api.uploadIntentHeaders(bytes),
    },
    socket: { remoteAddress: '127.0.0.1' },
  }) as unknown as IncomingMessage;
  let status = 0;
  const res = {
    writeHead: (s: number) => {
      status = s;
    },
    end: () => undefined,
  } as unknown as ServerResponse;
  try {
    await svc.upload(req, res);
    return { status };
  } catch (e) {
    return { status: 0, code: (e as { code?: string }).code };
  }
}

const addressOf = (key: Hex) => addressOfBytes(hexBytes(key, 'test key', 32));
const idOf = (b: Uint8Array) => `0x${createHash('sha256').update(b).digest('hex')}` as Hex;

/** Run job `i` of `requester` naming `inputs` through the node's job loop; its stored outputs. */
async function runJob(svc: JobService, i: number, requester: string, inputs: Hex[], now: number) {
  const jobId = `0x${String(i).padStart(64, '0')}` as Hex;
  svc.jobs.put({ jobId, status: 'accepted', inputs, createdAt: now, updatedAt: now });
  const job = {
    requester,
    escrow: 10n ** 30n,
    claimTimeout: 86_400n,
    deadline: BigInt(now + 86_400 * 2),
  } as unknown as FirnJob;
  await (svc as unknown as { process: (...a: unknown[]) => Promise<void> }).process(
    { jobId, inputs, enc: '0x', ciphertext: '0x' },
    { workloadHash: zero, inputCommitment: zero },
    job,
  );
  return { jobId, record: svc.jobs.get(jobId)! };
}

const UPLOAD = DEFAULT_ARTIFACT_RETENTION.uploadSeconds;
const _OUTPUT = DEFAULT_ARTIFACT_RETENTION.outputSeconds;

describe('attack: an output equal to an expired upload, swept while the job stores its outputs', () => {
  it('keeps the output of a job that is proving', async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'window'), clock);
    // The first job's enclave writes Buffer.alloc(3 K, 1): uploaded a day earlier, named by no job.
    const known = Buffer.alloc(3 * K, 1);
    expect((await upload(svc, ATTACKER_KEY, known, clock)).status).toBe(201);
    clock.now += UPLOAD;
    // The node's background sweep fires while the job stores its outputs (one tick, at an await).
    const s = svc as unknown as Record<string, unknown>;
    const copy = s.copyToShared as (id: Hex) => Promise<void>;
    s.copyToShared = async (id: Hex) => {
      svc.sweepArtifacts();
      return copy.call(svc, id);
    };
    const { record } = await runJob(svc, 1, addressOf(VICTIM_KEY), [], clock.now);
    expect(record.status).toBe('proving');
    expect(record.outputs?.[0]?.artifactId).toBe(idOf(known));
    expect(svc.artifacts.has(idOf(known))).toBe(true);
    svc.stop();
  });
});
