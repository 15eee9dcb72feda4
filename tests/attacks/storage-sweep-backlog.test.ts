import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FirnDeployment } from '@firn/chain';
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

// The attack (red team): the sweep is bounded per pass (decision 1603, 4.: 512 charge records
// looked at, 128 deletions, once a minute) but not per cycle: a pass looks at the next 512 records
// in artifact-id order, whatever their expiry. An attacker that stores many tiny artifacts (each
// one byte, charged one 4 KiB block: its 4 GiB quota buys 1,048,576 records; eight addresses 8
// million) makes one trip of the cursor round the table take records / 512 minutes: 1 M records,
// 34 hours; 8 M, 11 days. Every other address's expired upload waits that long before it is
// deleted and its quota given back, and the attacker's own expired records go at 128 a minute
// (184,320 a day), so one burst of uploads holds its quota days past the retention for free.
// Promise (decision 1603, docs/api.md "Retention"): an artifact no job names is deleted
// `retention.uploadSeconds` after its upload and its charge released (the sweep runs once a
// minute: minutes late, not days).

const dir = mkdtempSync(join(tmpdir(), 'firn-sweep-backlog-'));
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

describe("attack: delay everyone's retention with a table of tiny records", () => {
  it("a victim's expired upload is freed within ten sweeps (ten minutes) of its retention, whatever else is stored", async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'backlog'), clock);
    const victim = addressOf(VICTIM_KEY);
    // The victim's upload; its id is in the upper sixteenth of the id order (one in 16 draws).
    let body = randomBytes(K);
    for (let i = 0; i < 1000 && !idOf(body).startsWith('0xf'); i++) body = randomBytes(K);
    expect((await upload(svc, VICTIM_KEY, body, clock)).status).toBe(201);
    expect(svc.quota.usedBy(victim)).toBe(K);
    // The attacker's 20,000 one-byte uploads (2% of one address's default quota), uploaded an hour
    // later, so none has expired when the victim's has: their charge records as the upload path
    // writes them (QuotaLedger commit), put in one transaction to keep the test fast.
    const attacker = addressOf(ATTACKER_KEY);
    svc.db.db.transaction(() => {
      for (let i = 0; i < 20_000; i++)
        svc.db.putArtifactCharge({
          artifactId: idOf(Buffer.from(`tiny ${i}`)),
          owner: attacker,
          charged: K,
          storedAt: clock.now + 3600,
        });
    })();
    clock.now += UPLOAD;
    // The node's loop: one pass a minute.
    for (let minute = 0; minute < 10 && svc.artifacts.has(idOf(body)); minute++) {
      svc.sweepArtifacts();
      clock.now += 60;
    }
    expect(svc.artifacts.has(idOf(body))).toBe(false);
    expect(svc.quota.usedBy(victim)).toBe(0);
    svc.stop();
  });
});
