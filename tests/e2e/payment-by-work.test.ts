import { createFirnClients, finalizeJob, getJob, getWithdrawable, JobStatus } from '@firn/chain';
import { openInferenceSession, runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { checkResultAvailable } from '@firn/verifier';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import {
  expectVerifiersAccepted,
  JOB_RESULT_PATH,
  tinyInferenceJob,
  urlOf,
} from '../helpers/tinyInferenceJob.ts';
import { increaseTime, startTestNetwork, type TestNetwork } from './network.ts';

// Payment follows work (maxWorkUnits) and verifiers check the result the node serves against the
// proof's outputCommitment (docs/decisions/0830-result-availability.md). Each check below is the
// host's attack on it: a node serving altered or missing outputs, or a forged session opening, is
// found unavailable; the honest job and session are not.
let net: TestNetwork;
/** The test network's node listens on 127.0.0.1. */
const LOCAL = { allowPrivateEndpoints: true };
const realFetch = globalThis.fetch;
beforeAll(async () => {
  net = await startTestNetwork({ challengeWindow: 60 });
}, 120_000);
afterAll(async () => {
  globalThis.fetch = realFetch;
  await net?.stop();
});

/** Serve GET /v1/jobs/{id}/result through `edit` (the host's relay), everything else unchanged. */
function relayResult(edit: (body: Record<string, unknown>) => Record<string, unknown>) {
  globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
    const res = await realFetch(url, init);
    if (!JOB_RESULT_PATH.test(urlOf(url)) || !res.ok) return res;
    const body = edit((await res.json()) as Record<string, unknown>);
    return new Response(JSON.stringify(body), {
      status: 200,
      headers: { 'content-type': 'application/json' },
    });
  }) as typeof fetch;
}

describe('payment by work and result availability', () => {
  it('an honest job result is available; altered, extra or missing outputs are not', async () => {
    const kem = await generateKemKeyPair();
    const r = await runJob(await tinyInferenceJob(net, kem, [1, 2, 3]));
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const job = await getJob(reader, r.jobId);
    expect(await checkResultAvailable(reader, job, LOCAL)).toEqual({ available: true, kind: 'job' });
    try {
      relayResult((b) => {
        const outputs = b.outputs as { sealed: string }[];
        const bytes = Buffer.from(outputs[0]!.sealed, 'base64');
        bytes[bytes.length - 1] = (bytes[bytes.length - 1]! + 1) % 256;
        return { ...b, outputs: [{ ...outputs[0], sealed: bytes.toString('base64') }, ...outputs.slice(1)] };
      });
      expect(await checkResultAvailable(reader, job, LOCAL)).toMatchObject({
        available: false,
        reason: 'an output does not hash to its id',
      });
      relayResult((b) => ({ ...b, outputs: [] }));
      expect(await checkResultAvailable(reader, job, LOCAL)).toMatchObject({
        available: false,
        reason: 'the listed outputs do not match the outputCommitment',
      });
      // A batch job passed off as a session (no outputs to serve) does not open its commitment.
      relayResult((b) => ({
        ...b,
        outputs: [],
        session: {
          salt: `0x${'11'.repeat(32)}`,
          count: '1',
          requestsHash: job.outputCommitment,
          responsesHash: job.outputCommitment,
        },
      }));
      expect(await checkResultAvailable(reader, job, LOCAL)).toMatchObject({
        available: false,
        reason: 'the session opening does not match the outputCommitment',
      });
      // Malformed or oversized answers are refused as unavailable, never trusted or thrown.
      relayResult((b) => ({ ...b, outputs: Array.from({ length: 65 }, () => (b.outputs as unknown[])[0]) }));
      expect(await checkResultAvailable(reader, job, LOCAL)).toMatchObject({
        available: false,
        reason: 'the result lists no valid outputs',
      });
      relayResult((b) => ({ ...b, outputs: [{ role: 'output', artifactId: 'not hex' }] }));
      expect(await checkResultAvailable(reader, job, LOCAL)).toMatchObject({
        available: false,
        reason: 'an output entry is malformed',
      });
      globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) =>
        String(url).endsWith('/result')
          ? new Response('<html>', { status: 200, headers: { 'content-type': 'text/html' } })
          : realFetch(url, init)) as typeof fetch;
      expect(await checkResultAvailable(reader, job, LOCAL)).toMatchObject({
        available: false,
        reason: 'the result is not JSON',
      });
    } finally {
      globalThis.fetch = realFetch;
    }
    // Both verifiers found the honest result and did not dispute.
    await expectVerifiersAccepted(net, r.jobId);
  }, 90_000);

  it('a node that serves its result late, within the grace, is not disputed and the requester gets it', async () => {
    const kem = await generateKemKeyPair();
    const job = await tinyInferenceJob(net, kem, [3, 2, 1], { resultRetryMs: 500 });
    let servedFrom = Number.POSITIVE_INFINITY;
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      if (JOB_RESULT_PATH.test(urlOf(url))) {
        if (servedFrom === Number.POSITIVE_INFINITY) servedFrom = Date.now() + 5_000;
        if (Date.now() < servedFrom)
          return new Response('{"error":{"code":"E_UNAVAILABLE","message":"busy"}}', {
            status: 503,
            headers: { 'content-type': 'application/json' },
          });
      }
      return realFetch(url, init);
    }) as typeof fetch;
    let r: Awaited<ReturnType<typeof runJob>>;
    try {
      r = await runJob(job);
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(r.proofCheck).toEqual({ ok: true, reasons: [] });
    expect(r.outputs).toHaveLength(1);
    await expectVerifiersAccepted(net, r.jobId);
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    expect((await getJob(reader, r.jobId)).status).toBe(JobStatus.Proved);
  }, 90_000);

  it('a session that served 1 of the 1,000 requests paid for earns 1/1000 of the escrow; its opening checks out', async () => {
    const escrow = 10n ** 16n;
    const session = await openInferenceSession({
      rpcUrl: net.anvil.rpcUrl,
      deployment: net.deployment,
      requesterKey: net.requester.privateKey,
      policy: net.policy,
      roots: net.roots,
      model: { bytes: tinyLinearModel().bytes },
      escrow,
      // 1,000 requests of one [1, 3] tensor: 3 work units each.
      maxWorkUnits: 3000n,
    });
    await session.infer({ x: { type: 'float32', dims: [1, 3], data: Float32Array.of(1, 2, 3) } });
    const closed = await session.close();
    expect(closed.proofCheck).toEqual({ ok: true, reasons: [] });
    expect(closed.workUnits).toBe(3n);
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const jobId = session.jobId as Hex;
    let job = await getJob(reader, jobId);
    expect(job.maxWorkUnits).toBe(3000n);
    expect(await checkResultAvailable(reader, job, LOCAL)).toEqual({ available: true, kind: 'session' });
    try {
      relayResult((b) => ({ ...b, session: { ...(b.session as object), count: '1000' } }));
      expect(await checkResultAvailable(reader, job, LOCAL)).toMatchObject({
        available: false,
        reason: 'the session opening does not match the outputCommitment',
      });
    } finally {
      globalThis.fetch = realFetch;
    }
    const operatorBefore = await getWithdrawable(reader, 'jobMarket', net.operator.address);
    const requesterBefore = await getWithdrawable(reader, 'jobMarket', net.requester.address);
    await increaseTime(net.anvil.rpcUrl, 120);
    await finalizeJob(createFirnClients(net.anvil.rpcUrl, net.operator.privateKey, net.deployment), jobId);
    job = await getJob(reader, jobId);
    expect(job.status).toBe(JobStatus.Paid);
    const earned = (escrow * 3n) / 3000n;
    const bond = 10n ** 16n; // the test network's claim bond (0.01 ether), returned to the operator
    expect((await getWithdrawable(reader, 'jobMarket', net.operator.address)) - operatorBefore).toBe(
      earned + bond,
    );
    expect((await getWithdrawable(reader, 'jobMarket', net.requester.address)) - requesterBefore).toBe(
      escrow - earned,
    );
  }, 90_000);
});
