import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { JobFailedError, NodeLostError, runApp, runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { foreignModelAppJob } from '../helpers/foreignModelAppJob.ts';
import { tinyInferenceJob, urlOf } from '../helpers/tinyInferenceJob.ts';

// Attack by a malicious host (decision 1822, second round): the host refuses POST /v1/jobs
// with a node-loss code (429 E_RATE_LIMITED) and a message of its own choosing: 2000 characters
// (the most the SDK's schema takes) with ANSI escapes and newlines, worded like a conclusion
// about the job. settleRefusedSubmission reclaims the Open job and raises NodeLostError with the
// host's message verbatim: not capped, control characters kept, not marked as the node's word.
// What should happen: as for every other host refusal (hostFailureText): capped, control
// characters dropped, and the message says it is the node's word.
// Also (held checks, honest node): a genuine refusal before the claim is reported promptly,
// reclaimed, as the node's word.

let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 180_000);
afterAll(() => net?.stop());

const FORGED =
  '\u001b[2J\u001b[1;31mYOUR ESCROW WAS FORFEITED\u001b[0m\r\nThe enclave found your input invalid; ' +
  'contact support at evil.example and send your requester key.\n'.padEnd(1900, '.');

function refuseSubmission(): () => void {
  const realFetch = globalThis.fetch;
  globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
    if (/\/v1\/jobs$/.test(urlOf(url)) && init?.method === 'POST')
      return new Response(JSON.stringify({ error: { code: 'E_RATE_LIMITED', message: FORGED } }), {
        status: 429,
        headers: { 'content-type': 'application/json' },
      });
    return realFetch(url, init);
  }) as typeof fetch;
  return () => {
    globalThis.fetch = realFetch;
  };
}

function expectMarkedAndClean(e: unknown): void {
  expect(e).toBeInstanceOf(NodeLostError);
  const msg = (e as Error).message;
  expect((e as NodeLostError).reclaimed).toBe(true);
  // No control characters from the host, capped, and said to be the node's word.
  expect(msg, JSON.stringify(msg.slice(0, 120))).not.toMatch(/[\u0000-\u001f\u007f]/);
  expect(msg.length, 'host text is capped').toBeLessThan(600);
  expect(msg).toMatch(/node/i);
}

describe('host word: node-loss refusal of POST /v1/jobs carrying host text', () => {
  it('runJob: the host text in NodeLostError is capped, clean and marked as the node’s', async () => {
    const restore = refuseSubmission();
    let err: unknown;
    try {
      const kem = await generateKemKeyPair();
      await runJob(await tinyInferenceJob(net, kem, [1, 2, 3], { maxNodes: 1 }));
    } catch (e) {
      err = e;
    } finally {
      restore();
    }
    expectMarkedAndClean(err);
  }, 120_000);

  it('runApp: the host text in NodeLostError is capped, clean and marked as the node’s', async () => {
    const job = await foreignModelAppJob(net);
    const restore = refuseSubmission();
    let err: unknown;
    try {
      await runApp({ ...job.options, collectGrants: async (plan) => [await job.grant(plan)] });
    } catch (e) {
      err = e;
    } finally {
      restore();
    }
    expectMarkedAndClean(err);
  }, 120_000);
});

describe('held checks: an honest node’s refusal before its claim', () => {
  it('a claim timeout under the node’s minimum: JobFailedError E_POLICY_REJECTED, reclaimed, quickly', async () => {
    const kem = await generateKemKeyPair();
    let jobId: Hex | undefined;
    const t0 = performance.now();
    const err = await runJob(
      await tinyInferenceJob(net, kem, [1, 2, 3], {
        maxNodes: 1,
        claimTimeoutSeconds: 30,
        onPosted: (id) => {
          jobId = id;
        },
      }),
    ).catch((e: unknown) => e);
    const took = performance.now() - t0;
    expect(jobId, 'the job was posted, then refused by the node').toBeDefined();
    expect(err).toBeInstanceOf(JobFailedError);
    expect((err as JobFailedError).code).toBe('E_POLICY_REJECTED');
    expect((err as JobFailedError).reclaimed).toBe(true);
    expect((err as Error).message).toMatch(/minimum/);
    expect(took).toBeLessThan(20_000);
    if (jobId) {
      const clients = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
      expect((await getJob(clients, jobId)).status).not.toBe(JobStatus.Open);
    }
  }, 120_000);

  it('runApp: the same honest refusal is reported the same way', async () => {
    const job = await foreignModelAppJob(net);
    const t0 = performance.now();
    let jobId: Hex | undefined;
    const err = await runApp({
      ...job.options,
      claimTimeoutSeconds: 30,
      onPosted: (id) => {
        jobId = id;
      },
      collectGrants: async (plan) => [await job.grant(plan)],
    }).catch((e: unknown) => e);
    expect(jobId, 'the job was posted, then refused by the node').toBeDefined();
    expect(err).toBeInstanceOf(JobFailedError);
    expect((err as JobFailedError).code).toBe('E_POLICY_REJECTED');
    expect((err as JobFailedError).reclaimed).toBe(true);
    expect(performance.now() - t0).toBeLessThan(20_000);
  }, 120_000);
});
