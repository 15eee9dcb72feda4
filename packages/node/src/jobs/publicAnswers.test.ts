import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Hex } from '@firn/core';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactIdOf, storageService } from '../../../../tests/helpers/storageService.ts';
import { type StubNodeApiServer, startStubNodeApi } from '../../../../tests/helpers/stubNodeApiServer.ts';
import { DEFAULT_HTTP_LIMITS } from '../http/limits.ts';
import { JOB_RECORD_STATUSES, type JobRecord } from '../storage/jobRecord.ts';
import { MAX_INLINE_RESULT_BYTES, type JobService } from './jobApi.ts';
import { PUBLIC_JOB_VIEW_FIELDS, publicJobView } from './publicJobView.ts';

// What a stranger gets from the public job routes: the documented fields only (decision 1745), a
// result whose inline part is bounded whatever the outputs weigh (decision 1744), every answer
// valid against the served OpenAPI document (decision 1746).

const clock = { now: 1_900_000_000 };
const K = 1024;
const JOB = `0x${'a1'.repeat(32)}` as Hex;
const SESSION = `0x${'a2'.repeat(32)}` as Hex;
const INPUT = `0x${'77'.repeat(32)}` as Hex;
// 40 KiB inline; 30 KiB no longer fits the answer's 64 KiB; 20 KiB does; 1 MiB never.
const SIZES = [40 * K, 30 * K, 20 * K, 1024 * K];
const outputs = SIZES.map((n, i) => Buffer.alloc(n, i + 1));
const proof = {
  proof: { jobId: JOB },
  signature: `0x${'00'.repeat(65)}`,
  chainId: 31337,
  jobMarket: `0x${'00'.repeat(20)}`,
  enclaveAddress: `0x${'00'.repeat(20)}`,
} as unknown as NonNullable<JobRecord['proof']>;
/** A record with every private field set: none of them may reach an answer. */
const full: JobRecord = {
  jobId: JOB,
  status: 'proved',
  inputs: [INPUT],
  createdAt: clock.now - 100,
  updatedAt: clock.now - 5,
  outputs: outputs.map((b, i) => ({
    role: `out${i}`,
    artifactId: artifactIdOf(b),
    contentType: 'application/octet-stream',
    size: b.length,
  })),
  proof,
  response: Buffer.from('sealed channel response').toString('base64'),
  txs: { claim: `0x${'c1'.repeat(32)}`, proof: `0x${'c2'.repeat(32)}` },
  requestDigest: `0x${'d1'.repeat(32)}`,
  claimExpiresAt: clock.now + 600,
  challengeEndsAt: clock.now + 3600,
};

let dir: string;
let svc: JobService;
let api: StubNodeApiServer;
let doc: { components: { schemas: Record<string, unknown> } };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'firn-public-'));
  svc = storageService(dir, clock);
  for (const b of outputs) await svc.artifacts.put(Readable.from([b]), b.length, artifactIdOf(b));
  svc.jobs.put(full);
  svc.jobs.put({
    jobId: SESSION,
    status: 'finalized',
    inputs: [INPUT],
    createdAt: clock.now,
    updatedAt: clock.now,
    proof,
    sessionOpening: {
      salt: `0x${'5a'.repeat(32)}`,
      count: '3',
      requestsHash: `0x${'5b'.repeat(32)}`,
      responsesHash: `0x${'5c'.repeat(32)}`,
    },
    requestDigest: `0x${'d2'.repeat(32)}`,
  });
  // The stub host's own folder inside ours, so the test leaves nothing behind.
  api = await startStubNodeApi({ jobs: svc }, { chain: {}, dataDir: join(dir, 'api') });
  doc = (await (await fetch(`${api.url}/v1/openapi.json`)).json()) as typeof doc;
});

afterAll(() => {
  api?.close();
  svc?.stop();
  svc?.db.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A validator of the served document's component `name` (JSON Schema 2020-12, as OpenAPI 3.1). */
function schemaOf(name: string) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema({ $id: 'node', components: doc.components }, 'node');
  return ajv.compile({ $ref: `node#/components/schemas/${name}` });
}

describe('the public view of a job record (decision 1745)', () => {
  it('picks the documented fields by name: no input ids, digest, response, session opening or clock times', () => {
    const view = publicJobView({
      ...full,
      error: { code: 'E_CHAIN', message: 'the proof was not accepted' },
      sessionOpening: { salt: JOB, count: '1', requestsHash: JOB, responsesHash: JOB },
      // A field a later record carries stays private until it is documented.
      ...({ enclaveScratch: '/var/lib/firn/tmp' } as object),
    });
    expect(Object.keys(view).sort()).toEqual([...PUBLIC_JOB_VIEW_FIELDS].sort());
    expect(JSON.stringify(view)).not.toContain(INPUT.slice(2));
    expect(view.outputs![0]).toEqual({
      role: 'out0',
      artifactId: full.outputs![0]!.artifactId,
      contentType: 'application/octet-stream',
      size: 40 * K,
    });
  });

  it('GET /v1/jobs/{id} answers the view, valid against the served JobRecord schema (no extra property)', async () => {
    const r = await fetch(`${api.url}/v1/jobs/${JOB}`);
    expect(r.status).toBe(200);
    const body = (await r.json()) as Record<string, unknown>;
    expect(body).toEqual(JSON.parse(JSON.stringify(publicJobView(full))));
    const valid = schemaOf('JobRecord');
    expect(valid(body), JSON.stringify(valid.errors)).toBe(true);
    // The schema is strict: the whole record (as answered before) is refused by it.
    const { response: _r, ...wholeRecord } = full;
    expect(valid(wholeRecord)).toBe(false);
  });

  it('the served JobRecord.status enum is JOB_RECORD_STATUSES, and every status validates', () => {
    const valid = schemaOf('JobRecord');
    const s = doc.components.schemas.JobRecord as { properties: { status: { enum: string[] } } };
    expect(s.properties.status.enum).toEqual([...JOB_RECORD_STATUSES]);
    for (const status of JOB_RECORD_STATUSES)
      expect(valid(publicJobView({ ...full, status })), status).toBe(true);
    expect(valid(publicJobView({ ...full, status: 'paid' as never }))).toBe(false);
  });
});

describe('GET /v1/jobs/{id}/result inlines a bounded part (decision 1744)', () => {
  it('the first outputs that fit 64 KiB in all carry their bytes; the others are listed for GET /v1/artifacts/{id}', async () => {
    const r = await fetch(`${api.url}/v1/jobs/${JOB}/result`);
    expect(r.status).toBe(200);
    const body = (await r.json()) as {
      outputs: { artifactId: string; size: number; sealed?: string }[];
      response?: string;
    };
    expect(body.outputs.map((o) => o.sealed !== undefined)).toEqual([true, false, true, false]);
    const inlined = body.outputs.reduce((n, o) => n + (o.sealed === undefined ? 0 : o.size), 0);
    expect(inlined).toBeLessThanOrEqual(MAX_INLINE_RESULT_BYTES);
    expect(Buffer.from(body.outputs[0]!.sealed!, 'base64').equals(outputs[0]!)).toBe(true);
    expect(body.response).toBe(full.response);
    for (const o of body.outputs.filter((x) => x.sealed === undefined)) {
      const a = await fetch(`${api.url}/v1/artifacts/${o.artifactId}`);
      expect(a.status).toBe(200);
      expect(artifactIdOf(new Uint8Array(await a.arrayBuffer()))).toBe(o.artifactId);
    }
    const valid = schemaOf('JobResult');
    expect(valid(body), JSON.stringify(valid.errors)).toBe(true);
    expect(JSON.stringify(body)).not.toContain(INPUT.slice(2));
  });

  it("a session's result (the transcript opening) validates against JobResult too", async () => {
    const body = (await (await fetch(`${api.url}/v1/jobs/${SESSION}/result`)).json()) as object;
    const valid = schemaOf('JobResult');
    expect(valid(body), JSON.stringify(valid.errors)).toBe(true);
    expect(JSON.stringify(body)).not.toContain(INPUT.slice(2));
  });

  it('an output whose file is not its listed size is listed, never read whole into the answer', async () => {
    const odd = `0x${'a4'.repeat(32)}` as Hex;
    const b = Buffer.alloc(300 * K, 0x44);
    const id = artifactIdOf(b);
    await svc.artifacts.put(Readable.from([b]), b.length, id);
    svc.jobs.put({ ...full, jobId: odd, outputs: [{ ...full.outputs![0]!, artifactId: id, size: 100 }] });
    const r = await fetch(`${api.url}/v1/jobs/${odd}/result`);
    expect(r.status).toBe(200);
    const body = (await r.json()) as { outputs: { size: number; sealed?: string }[] };
    expect(body.outputs).toEqual([expect.objectContaining({ size: 100 })]);
    expect(body.outputs[0]!.sealed).toBeUndefined();
  });

  it('an output no longer stored is 404 naming the retention, not a 500', async () => {
    const gone = `0x${'a3'.repeat(32)}` as Hex;
    const b = Buffer.alloc(100, 0x33);
    const id = artifactIdOf(b);
    svc.jobs.put({ ...full, jobId: gone, outputs: [{ ...full.outputs![0]!, artifactId: id, size: 100 }] });
    const r = await fetch(`${api.url}/v1/jobs/${gone}/result`);
    expect(r.status).toBe(404);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/no longer stored/);
  });
});

describe('public reads have a per-client rate (decision 1744)', () => {
  it('over readRequestsPerSecondPerIp the reads (and /healthz) get 429 with Retry-After; the mutating routes still answer', async () => {
    const slow = await startStubNodeApi(
      { jobs: svc, limits: { ...DEFAULT_HTTP_LIMITS, readRequestsPerSecondPerIp: 3 } },
      { chain: {}, dataDir: join(dir, 'api') },
    );
    try {
      const paths = [
        `/v1/jobs/${JOB}`,
        `/v1/jobs/${JOB}/result`,
        `/v1/artifacts/${full.outputs![3]!.artifactId}`,
      ];
      const statuses: number[] = [];
      for (const p of [...paths, ...paths]) {
        const r = await fetch(`${slow.url}${p}`, { method: 'HEAD' });
        statuses.push(r.status);
        if (r.status === 429) expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
      expect(statuses.slice(3)).toEqual([429, 429, 429]);
      // One budget for every credential-free read, /healthz included (decision 1761)...
      expect((await fetch(`${slow.url}/healthz`)).status).toBe(429);
      // ...separate from the mutating routes' rate.
      const att = await fetch(`${slow.url}/v1/attestation`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ nonce: `0x${'11'.repeat(32)}` }),
      });
      expect(att.status).toBe(200);
    } finally {
      slow.close();
    }
  });
});
