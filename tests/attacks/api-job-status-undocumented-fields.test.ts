import { runJob } from '@firn/client';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { inferenceJobOptions, startTestNetwork, type TestNetwork } from '../e2e/network.ts';

// A stranger (no key) asks a node about another requester's job: GET /v1/jobs/{id} needs no
// credential and job ids are on chain. docs/api.md documents the answer as
// `{jobId, status, error?, outputs?, proof?, txs?, claimExpiresAt?, challengeEndsAt?}` and the
// OpenAPI JobRecord as {jobId, status, error, outputs, proof}; the node answers its whole database
// record less `response` (jobApi.ts status(): `const { response: _r, ...rest } = this.record(id)`),
// so the stranger also gets the requester's INPUT artifact ids (never on chain: the chain holds only
// a commitment), which GET /v1/artifacts/{id} then serves (ciphertext and exact sizes) to anyone,
// and which link every job of every requester that used the same model or dataset; plus the
// node's own submission digest and the exact admission time. Safe outcome: the answer holds only
// the documented fields.
const DOCUMENTED = new Set([
  'jobId',
  'status',
  'error',
  'outputs',
  'proof',
  'txs',
  'claimExpiresAt',
  'challengeEndsAt',
]);
let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

describe("a stranger reads another requester's job", () => {
  it('GET /v1/jobs/{id} answers the documented fields only: no input artifact ids', async () => {
    const kem = await generateKemKeyPair();
    const model = tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 7 });
    const r = await runJob(inferenceJobOptions(net, kem, model.bytes));
    const stranger = await fetch(new URL(`/v1/jobs/${r.jobId}`, net.node.url));
    expect(stranger.status).toBe(200);
    const body = (await stranger.json()) as Record<string, unknown>;
    const extra = Object.keys(body).filter((k) => !DOCUMENTED.has(k));
    expect(extra, JSON.stringify(body).slice(0, 600)).toEqual([]);
    expect(body['inputs']).toBeUndefined();
  }, 90_000);
});
