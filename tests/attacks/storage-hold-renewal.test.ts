import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { type FirnDeployment, type FirnJob, JobStatus } from '@firn/chain';
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

// The attack (red team): `checkOpenJob` holds a submission's inputs from the sweep for an hour
// (decision 1603, 4.) BEFORE it checks that the job is Open, for this node, and that the inputs
// are the ones committed on chain. The requester of any job ever posted (Paid long ago, on any
// node) sends a signed POST /v1/jobs for that job every 59 minutes naming any 16 artifacts stored
// here, its own or a victim's: each submission is refused (409, the job is not Open), but the hold
// is renewed. The artifacts are never deleted and their owners' quota stays taken for good, for
// the price of a free signed request an hour: what decision 1603, 5. refused for re-uploads.
// Promise (decision 1603, docs/api.md "Retention"): an artifact no job record names is deleted
// `retention.uploadSeconds` after its upload and its charge released; only a job (posted with
// escrow, recorded here) keeps another's artifact.

const dir = mkdtempSync(join(tmpdir(), 'firn-hold-renewal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const zero = `0x${'00'.repeat(20)}` as Hex;
// Made-up test keys (a repeated byte), never a real account's.
const ATTACKER_KEY = `0x${'a1'.repeat(32)}` as Hex;
const VICTIM_KEY = `0x${'b2'.repeat(32)}` as Hex;
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
    operatorKey: `0x${'11'.repeat(32)}`,
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

const UPLOAD = DEFAULT_ARTIFACT_RETENTION.uploadSeconds;

/**
 * POST /v1/jobs through JobService.submit as the HTTP layer calls it (body parsed), the signature
 * check standing in for a valid one by `onChain.requester` (the attacker signs its own old job).
 */
async function submit(svc: JobService, onChain: FirnJob, inputs: Hex[]) {
  const s = svc as unknown as { authorizeSubmission: () => Promise<FirnJob> };
  s.authorizeSubmission = async () => onChain;
  const req = { headers: {}, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
  const res = { writeHead: () => undefined, end: () => undefined } as unknown as ServerResponse;
  const body = { jobId: `0x${'5a'.repeat(32)}`, enc: `0x${'00'.repeat(32)}`, ciphertext: 'AAAA', inputs };
  try {
    await svc.submit(req, res, body);
    return 'accepted';
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

describe("attack: keep a victim's artifacts (and quota) for ever by re-submitting an old job", () => {
  it('a refused submission of a job that is not Open holds nothing: the victim upload goes at its retention', async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'renew'), clock);
    const victim = addressOf(VICTIM_KEY);
    const bodies = Array.from({ length: 4 }, () => randomBytes(4 * K));
    for (const b of bodies) expect((await upload(svc, VICTIM_KEY, b, clock)).status).toBe(201);
    expect(svc.quota.usedBy(victim)).toBe(16 * K);
    // The attacker's own job, paid long ago (on another node): it was never submitted here.
    const oldJob = {
      requester: addressOf(ATTACKER_KEY),
      status: JobStatus.Paid,
      escrow: 1n,
      claimTimeout: 3600n,
      deadline: BigInt(clock.now - 86_400),
      inputCommitment: `0x${'00'.repeat(32)}`,
      teeTypeMask: 0xff,
      allowedMeasurements: [],
    } as unknown as FirnJob;
    const ids = bodies.map(idOf);
    // Every 59 minutes for two days: each submission is refused (not Open; once the uploads are
    // gone, their inputs are not stored here) ...
    for (let t = 0; t < 2 * UPLOAD; t += 59 * 60) {
      expect(['E_CONFLICT', 'E_NOT_FOUND']).toContain(await submit(svc, oldJob, ids));
      clock.now += 59 * 60;
      svc.sweepArtifacts();
    }
    // ... and the victim's uploads, named by no job record here, are gone with their charge.
    expect(svc.jobs.get(`0x${'5a'.repeat(32)}` as Hex)).toBeUndefined();
    for (const b of bodies) expect(svc.artifacts.has(idOf(b))).toBe(false);
    expect(svc.quota.usedBy(victim)).toBe(0);
    svc.stop();
  });
});
