import { createFirnClients, getJob, getNode, JobStatus, NodeStatus } from '@firn/chain';
import { runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rpcCall } from '../../packages/chain/test/rpcProxy.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { JOB_RESULT_PATH, tinyInferenceJob, urlOf } from '../helpers/tinyInferenceJob.ts';

// A verifier whose host clock runs 30 minutes ahead of the chain (or a chain that runs behind)
// waits for a proved job's result before it disputes "result unavailable". Judged on the host's
// clock, the grace share of the challenge window looked spent at the first look, so a result served
// a few seconds after the proof got an honest node disputed and slashed at once.
const SKEW = 1800;
let net: TestNetwork;
const realFetch = globalThis.fetch;
const rpc = (method: string, params: unknown[]) => rpcCall(net.anvil.rpcUrl, method, params);

beforeAll(async () => {
  net = await startTestNetwork({ challengeWindow: 60 });
  await rpc('anvil_setTime', [Math.floor(Date.now() / 1000) - SKEW]);
  await rpc('evm_mine', []);
  // The node's enclave has counted chain time since the network started, and its clock never
  // winds back (a real chain's never does): restarted, it sees only the chain behind the host, as
  // on a host whose clock was ahead from the start. Its claim deadlines then match the node's.
  // First the node's chain monitor must have read the new head (it reads every 2 s): the restarted
  // enclave takes its first chain time from it.
  const monitor = net.node.jobs?.chainMonitor;
  if (monitor === undefined) throw new Error('the node has no job service');
  for (
    const until = Date.now() + 20_000;
    monitor.now() > Date.now() / 1000 - SKEW / 2 && Date.now() < until;
  )
    await new Promise((r) => setTimeout(r, 100));
  if (monitor.now() > Date.now() / 1000 - SKEW / 2) throw new Error('the node did not see the chain time');
  const restarted = () => net.logs.some((l) => l.includes('enclave restarted with the same identity'));
  process.kill(net.node.supervisor.pid!, 'SIGKILL');
  for (const until = Date.now() + 30_000; !restarted() && Date.now() < until; )
    await new Promise((r) => setTimeout(r, 100));
  if (!restarted()) throw new Error('the enclave did not restart');
}, 120_000);
afterAll(async () => {
  globalThis.fetch = realFetch;
  await net?.stop();
});

describe('verifiers on a host clock ahead of the chain', () => {
  it('do not dispute an honest result served a few seconds after the proof', async () => {
    const kem = await generateKemKeyPair();
    // The result is served from 5 s after the job is posted (a slow store, a restart).
    let servedFrom = Number.POSITIVE_INFINITY;
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      if (JOB_RESULT_PATH.test(urlOf(url)) && Date.now() < servedFrom)
        return new Response('{"error":{"code":"E_NOT_FOUND","message":"no result yet"}}', {
          status: 404,
          headers: { 'content-type': 'application/json' },
        });
      return realFetch(url, init);
    }) as typeof fetch;
    let jobId: Hex | undefined;
    try {
      await runJob(
        await tinyInferenceJob(net, kem, [1, 2, 3], {
          onPosted: (id: Hex) => {
            jobId = id;
            servedFrom = Date.now() + 5_000;
          },
        }),
      ).catch(() => undefined);
      if (jobId === undefined) throw new Error('the job was never posted');
      const clients = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
      // Let the verifiers look again after the result is served (they retry every 2 s).
      while (Date.now() < servedFrom + 6_000) await new Promise((r) => setTimeout(r, 500));
      const job = await getJob(clients, jobId);
      expect(job.provedAt).toBeGreaterThan(0n);
      expect(JobStatus[job.status]).toBe('Proved');
      expect(NodeStatus[(await getNode(clients, job.enclaveId)).status]).toBe('Active');
    } finally {
      globalThis.fetch = realFetch;
    }
  }, 180_000);
});

// The requester's SDK judged the same waits on the later of block time and its host clock: with
// the host 30 minutes ahead, a result not served at the first ask looked past its challenge window
// (the requester gave up on an honest job, E_RESULT_UNAVAILABLE), and a node that lost the
// requester's connection while it ran the job looked past its claim timeout (the requester sent a
// zero-value "nudge" transaction after another, paying gas, until the job ended). Both are now
// judged on chain time first seen plus the requester's own elapsed time (ChainClock).
describe('requesters on a host clock ahead of the chain', () => {
  const kemP = generateKemKeyPair();

  it('wait for an honest result served a few seconds after the proof, and get it', async () => {
    const kem = await kemP;
    let servedFrom = Number.POSITIVE_INFINITY;
    let refused = 0;
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      if (JOB_RESULT_PATH.test(urlOf(url)) && Date.now() < servedFrom) {
        refused++;
        return new Response('{"error":{"code":"E_NOT_FOUND","message":"no result yet"}}', {
          status: 404,
          headers: { 'content-type': 'application/json' },
        });
      }
      return realFetch(url, init);
    }) as typeof fetch;
    try {
      const r = await runJob(
        await tinyInferenceJob(net, kem, [1, 2, 3], {
          resultRetryMs: 500,
          onPosted: () => {
            servedFrom = Date.now() + 4_000;
          },
        }),
      );
      expect(refused).toBeGreaterThan(0); // the requester did ask while the result was withheld
      expect(r.proofCheck).toEqual({ ok: true, reasons: [] });
      expect(r.outputs.length).toBeGreaterThan(0);
      const clients = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
      expect(JobStatus[(await getJob(clients, r.jobId)).status]).toBe('Proved');
    } finally {
      globalThis.fetch = realFetch;
    }
  }, 60_000);

  it('do not spend gas nudging the chain while an honest node runs a job whose answer was lost', async () => {
    const kem = await kemP;
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const requester = net.requester.address as Hex;
    const enclavePid = net.node.supervisor.pid;
    if (enclavePid === undefined) throw new Error('the node has no enclave process');
    let jobId: Hex | undefined;
    let stoppedWhile: string | undefined;
    let resume: NodeJS.Timeout | undefined;
    // The node takes the job, but its answer never reaches the requester (both tries): the
    // requester sees the node as lost while the node claims and runs it. The enclave is held for
    // 3 s once the job is Claimed, so the requester's wait on the claim lasts that long.
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      if (init?.method === 'POST' && /\/v1\/jobs$/.test(urlOf(url))) {
        if (stoppedWhile === undefined && jobId !== undefined) {
          await realFetch(url, init);
          for (let i = 0; i < 500; i++) {
            const st = (await getJob(reader, jobId)).status;
            if (st !== JobStatus.Open) break;
            await new Promise((r) => setTimeout(r, 10));
          }
          process.kill(enclavePid, 'SIGSTOP');
          stoppedWhile = JobStatus[(await getJob(reader, jobId)).status];
          resume = setTimeout(() => process.kill(enclavePid, 'SIGCONT'), 3_000);
        }
        throw new TypeError('fetch failed (test: the answer was lost)');
      }
      return realFetch(url, init);
    }) as typeof fetch;
    const stages: string[] = [];
    try {
      const nonceBefore = await reader.public.getTransactionCount({ address: requester });
      const r = await runJob(
        await tinyInferenceJob(net, kem, [1, 2, 3], {
          maxNodes: 1,
          pollMs: 300,
          onPosted: (id: Hex) => {
            jobId = id;
          },
          onProgress: (ev) => {
            if (typeof ev.stage === 'string') stages.push(ev.stage);
          },
        }),
      );
      // The job was still Claimed (not proved yet) while the requester waited on it.
      expect(stoppedWhile).toBe('Claimed');
      expect(stages).toContain('node-lost');
      expect(r.proofCheck).toEqual({ ok: true, reasons: [] });
      // One transaction: the job's post. No reclaim, and no nudge of a claim that had not lapsed.
      expect((await reader.public.getTransactionCount({ address: requester })) - nonceBefore).toBe(1);
    } finally {
      globalThis.fetch = realFetch;
      if (resume !== undefined) {
        clearTimeout(resume);
        process.kill(enclavePid, 'SIGCONT');
      }
    }
  }, 60_000);
});
