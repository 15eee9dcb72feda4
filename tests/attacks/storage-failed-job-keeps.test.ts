import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { type FirnDeployment, type FirnJob, JobStatus } from '@firn/chain';
import { NodeApi } from '@firn/client';
import { computeInputCommitment, FirnError, type Hex, hexBytes } from '@firn/core';
import { addressOf as addressOfBytes } from '@firn/crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { RequestRateLimiter, UploadSlots } from '../../packages/node/src/http/limits.ts';
import { type JobApiOptions, JobService } from '../../packages/node/src/jobs/jobApi.ts';
import type { JobHost } from '../../packages/node/src/jobs/jobHost.ts';
import { createLogger } from '../../packages/node/src/logger.ts';
import { DEFAULT_ARTIFACT_RETENTION } from '../../packages/node/src/storage/artifactRetention.ts';
import { NodeDb } from '../../packages/node/src/storage/nodeDb.ts';
import { STORAGE_BLOCK_BYTES as K } from '../../packages/node/src/storage/quota.ts';

// The attack (red team): a job's artifacts live `retention.outputSeconds` (7 days) after the job
// is final on the node's record, and `failed` is final (decision 1603, 3.). A job the enclave
// refuses at pre-flight (a request that does not open, grants that fail) is recorded `failed`
// without ever being claimed. So an attacker posts a job of its own whose input commitment lists
// a victim's uploads (ids are public: GET /v1/artifacts/{id}), with the node's minimum escrow
// (1 wei) and the shortest deadline it takes, and submits it with any request: the pre-flight
// refuses it, no claim, no gas for the node, and the attacker reclaims its escrow after the
// deadline. The failed record names the victim's uploads, which are now kept 7 days past its
// failure, their charge still the victim's. Once a week, for the gas of a post and a reclaim, the
// victim's quota stays taken for good. Decision 1603 ("Not done") prices this at "a posted job
// with escrow" kept "until that job expires"; here the job expires at once and costs no escrow.
// Promise (decision 1603, docs/api.md "Retention"): an upload is deleted `retention.uploadSeconds`
// after it and its charge released; only a job that ran (a result someone may need) keeps more.

const dir = mkdtempSync(join(tmpdir(), 'firn-failed-job-keeps-'));
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

describe("attack: keep a victim's uploads with jobs refused at pre-flight", () => {
  it("a job failed before any claim does not keep the victim's uploads past their upload retention", async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'preflight'), clock);
    // The enclave refuses the attacker's request at pre-flight (it holds no grant for these inputs).
    const supervisor = svc.node.supervisor as unknown as {
      call: (m: string, a: unknown) => Promise<unknown>;
    };
    const call = supervisor.call.bind(supervisor);
    supervisor.call = async (m: string, a: unknown) => {
      if (m === 'preflightJob') throw new FirnError('E_GRANT_INVALID', 'no grant for this input');
      return call(m, a);
    };
    const victim = addressOf(VICTIM_KEY);
    const bodies = Array.from({ length: 4 }, () => randomBytes(4 * K));
    for (const b of bodies) expect((await upload(svc, VICTIM_KEY, b, clock)).status).toBe(201);
    expect(svc.quota.usedBy(victim)).toBe(16 * K);
    const ids = bodies.map(idOf);

    // A minute before the uploads expire, the attacker's job naming them: 1 wei, a short deadline.
    clock.now += UPLOAD - 60;
    const jobId = `0x${'5b'.repeat(32)}` as Hex;
    const onChain = {
      requester: addressOf(ATTACKER_KEY),
      status: JobStatus.Open,
      escrow: 1n,
      claimTimeout: 60n,
      deadline: BigInt(clock.now + 120),
      inputCommitment: computeInputCommitment(ids),
      teeTypeMask: 0xff,
      allowedMeasurements: [],
      workloadHash: `0x${'00'.repeat(32)}`,
    } as unknown as FirnJob;
    // The submission as the HTTP layer hands it over; the signature check stands in for a valid
    // one by the attacker (the job's requester).
    (svc as unknown as { authorizeSubmission: () => Promise<FirnJob> }).authorizeSubmission = async () =>
      onChain;
    const req = { headers: {}, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
    const res = { writeHead: () => undefined, end: () => undefined } as unknown as ServerResponse;
    await svc.submit(req, res, { jobId, enc: `0x${'00'.repeat(32)}`, ciphertext: 'AAAA', inputs: ids });
    for (let i = 0; i < 200 && svc.jobs.get(jobId)?.status !== 'failed'; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(svc.jobs.get(jobId)).toMatchObject({ status: 'failed' });
    expect(svc.jobs.get(jobId)?.txs?.claim).toBeUndefined();

    // The uploads' own retention ends, and the submission's hold (an hour from its check, decision
    // 1603, 4.) with it: they go, and the victim's quota is back.
    clock.now += 60;
    for (let minute = 0; minute < 62; minute++) {
      svc.sweepArtifacts();
      clock.now += 60;
    }
    for (const id of ids) expect(svc.artifacts.has(id)).toBe(false);
    expect(svc.quota.usedBy(victim)).toBe(0);
    svc.stop();
  });
});
