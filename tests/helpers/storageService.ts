import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FirnDeployment, FirnJob } from '@firn/chain';
import { NodeApi } from '@firn/client';
import { type Hex, hexBytes } from '@firn/core';
import { addressOf as addressOfBytes } from '@firn/crypto';
import { RequestRateLimiter, UploadSlots } from '../../packages/node/src/http/limits.ts';
import { type JobApiOptions, JobService } from '../../packages/node/src/jobs/jobApi.ts';
import type { JobHost } from '../../packages/node/src/jobs/jobHost.ts';
import { createLogger } from '../../packages/node/src/logger.ts';
import { NodeDb } from '../../packages/node/src/storage/nodeDb.ts';
import { STORAGE_BLOCK_BYTES as K, type StorageQuotas } from '../../packages/node/src/storage/quota.ts';

const zero = `0x${'00'.repeat(20)}` as Hex;

/** The enclave id of the node these helpers build (32 bytes, hex). */
export const ENCLAVE_ID = `0x${'33'.repeat(32)}` as Hex;

/** A deployment with every contract at the zero address (no chain is reached: writes are stubbed). */
export const storageDeployment = {
  chainId: 31337,
  registry: zero,
  verifierSet: zero,
  jobMarket: zero,
  dataLedger: zero,
  deployBlock: 0n,
} as FirnDeployment;

/**
 * A node's JobService in `dataDir` with no chain (every chain write answers at once with a fixed
 * hash; the chain monitor reports up) and an enclave whose every job writes one output of
 * `outBytes` bytes, distinct per job, under `quotas` (bytes). `opts` are passed to JobService.
 * For the storage quota and retention attacks (decisions 1550, 1603).
 */
export function stubbedJobService(
  dataDir: string,
  quotas: StorageQuotas,
  outBytes: number,
  opts: Partial<JobApiOptions> = {},
): JobService {
  let n = 0;
  const supervisor = Object.assign(new EventEmitter(), {
    call: async (method: string, args: { outputDir?: string }) => {
      if (method !== 'runJob') return {};
      const bytes = Buffer.alloc(outBytes, ++n);
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
    // A made-up test key (a repeated byte), never a real account's.
    operatorKey: `0x${'11'.repeat(32)}`,
    deployment: storageDeployment,
    logger: createLogger({}, { write: () => undefined }),
    ...opts,
  });
  const s = svc as unknown as Record<string, unknown>;
  s.chain = async () => ({ hash: `0x${'44'.repeat(32)}` });
  (svc.chainMonitor as unknown as { requireUp: () => Promise<void> }).requireUp = async () => undefined;
  return svc;
}

/**
 * A node's JobService in `dataDir` on a clock the test moves (`clock.now`, unix seconds); no chain
 * (writes answer at once). Every job writes one output of 3 storage blocks, distinct per job; a
 * job's proof stays kept (`proving`: the test moves the record on itself); every uploader holds a
 * balance. `quotas` in bytes (default 16 blocks per address, 64 in all); `extra` goes to JobService.
 */
export function storageService(
  dataDir: string,
  clock: { now: number },
  quotas: StorageQuotas = { perAddressBytes: 16 * K, totalBytes: 64 * K },
  extra: Partial<JobApiOptions> = {},
): JobService {
  const svc = stubbedJobService(dataDir, quotas, 3 * K, { now: () => clock.now, ...extra });
  (svc as unknown as Record<string, unknown>).submitKeptProof = async () => undefined;
  (svc.clients.public as unknown as { getBalance: () => Promise<bigint> }).getBalance = async () => 1n;
  return svc;
}

/**
 * PUT /v1/artifacts through JobService.upload with an upload intent signed by `key` at `clock.now`:
 * `{ status }` (the HTTP status written) or `{ status: 0, code }` (the FirnError code thrown).
 */
export async function uploadAs(svc: JobService, key: Hex, bytes: Uint8Array, clock: { now: number }) {
  const api = new NodeApi('http://node.invalid', 30_000, {
    requesterKey: key,
    scope: {
      chainId: storageDeployment.chainId,
      jobMarket: storageDeployment.jobMarket,
      enclaveId: ENCLAVE_ID,
    },
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
    once: () => res,
  } as unknown as ServerResponse;
  try {
    await svc.upload(req, res);
    return { status };
  } catch (e) {
    return { status: 0, code: (e as { code?: string }).code };
  }
}

/** The 20-byte address (hex) of a 32-byte test key. */
export const addressOfKey = (key: Hex) => addressOfBytes(hexBytes(key, 'test key', 32));
/** An artifact's id: the SHA-256 of its bytes (hex). */
export const artifactIdOf = (b: Uint8Array) => `0x${createHash('sha256').update(b).digest('hex')}` as Hex;

/**
 * Run job number `i` of `requester` naming `inputs` through `svc`'s job loop at `now` (unix s):
 * its record is put `accepted`, then processed (claim, enclave, outputs stored); resolves to its
 * id and its record after. `maxOutputBytes`: the bound its submission declares (decision 1690).
 * For the retention attacks (decision 1603).
 */
export async function runStorageJob(
  svc: JobService,
  i: number,
  requester: string,
  inputs: Hex[],
  now: number,
  maxOutputBytes?: number,
) {
  const jobId = `0x${String(i).padStart(64, '0')}` as Hex;
  svc.jobs.put({ jobId, status: 'accepted', inputs, createdAt: now, updatedAt: now });
  const job = {
    requester,
    escrow: 10n ** 30n,
    claimTimeout: 86_400n,
    deadline: BigInt(now + 86_400 * 2),
  } as unknown as FirnJob;
  await (svc as unknown as { process: (...a: unknown[]) => Promise<void> }).process(
    {
      jobId,
      inputs,
      enc: '0x',
      ciphertext: '0x',
      ...(maxOutputBytes === undefined ? {} : { maxOutputBytes }),
    },
    { workloadHash: zero, inputCommitment: zero },
    job,
  );
  return { jobId, record: svc.jobs.get(jobId)! };
}
