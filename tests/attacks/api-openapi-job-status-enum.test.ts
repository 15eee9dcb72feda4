import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobService } from '../../packages/node/src/jobs/jobApi.ts';
import type { JobRecordStatus } from '../../packages/node/src/storage/jobRecord.ts';
import { type StubNodeApiServer, startStubNodeApi } from '../helpers/stubNodeApiServer.ts';

// A requester (or a stranger) builds a client from the node's own GET /v1/openapi.json, as the
// README tells them to ("the artifact, job and warm inference session endpoints described in
// GET /v1/openapi.json"). Its JobRecord says status is one of accepted|claimed|running|proved|failed
// (openapi.ts), but the node answers `proving` (a proof kept through a chain outage) and
// `finalized` (the node was paid) too (storage/jobRecord.ts, docs/api.md): a client that validates
// answers against the spec rejects every paid job's status, and one that switches on the enum has
// no branch for them. Safe outcome: the spec's enum holds every status the node answers.
const EVERY: JobRecordStatus[] = [
  'accepted',
  'claimed',
  'running',
  'proving',
  'proved',
  'finalized',
  'failed',
];
let api: StubNodeApiServer;

beforeAll(async () => {
  api = await startStubNodeApi({ jobs: {} as JobService }, { chain: {} });
});
afterAll(() => api?.close());

describe('GET /v1/openapi.json', () => {
  it('JobRecord.status lists every status GET /v1/jobs/{id} answers', async () => {
    const doc = (await (await fetch(`${api.url}/v1/openapi.json`)).json()) as {
      components: { schemas: { JobRecord: { properties: { status: { enum: string[] } } } } };
    };
    const listed = doc.components.schemas.JobRecord.properties.status.enum;
    expect(EVERY.filter((s) => !listed.includes(s))).toEqual([]);
  });
});
