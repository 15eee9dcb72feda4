import { connect, type Socket } from 'node:net';
import { createFirnClients, getJob } from '@firn/chain';
import { NodeApi, openInferenceSession, type RunJobOptions, runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { encodeOnnxModel } from '@firn/ml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePrivateKey } from 'viem/accounts';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import {
  inferenceInputs,
  inferenceJobOptions,
  requesterOptions,
  requestScope,
  startTestNetwork,
  type TestNetwork,
} from '../e2e/network.ts';

// Attacks by a stranger (or a requester acting in bad faith) on the node API. Each test performs
// the attack and asserts what docs/api.md and docs/decisions/0871-node-api-access.md promise.
let net: TestNetwork;
let kem: { privateKey: Uint8Array; publicKey: Uint8Array };
const model = tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 5 });

beforeAll(async () => {
  net = await startTestNetwork();
  kem = await generateKemKeyPair();
}, 120_000);
afterAll(() => net?.stop());

const scope = () => requestScope(net);

const jobOptions = (extra: Partial<RunJobOptions> = {}) => inferenceJobOptions(net, kem, model.bytes, extra);

describe('node API attacks', () => {
  it('a malformed percent-escape in an id is a 400 with the JSON error body, not a 500 E_INTERNAL', async () => {
    for (const path of ['/v1/jobs/%E0%A4%A', '/v1/artifacts/%', '/v1/jobs/%ZZ/result']) {
      const r = await fetch(new URL(path, net.node.url));
      expect(r.status, path).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('E_INVALID_INPUT');
    }
  });

  it('a session message without Content-Type (a cross-site "simple" request) is refused with 415 before the enclave', async () => {
    const s = await openInferenceSession({
      ...requesterOptions(net, kem),
      model: { bytes: model.bytes },
      escrow: 10n ** 15n,
    });
    try {
      // What fetch(url, {method: 'POST', body: new Blob([bytes])}) sends from any web page: no
      // Content-Type header at all, so no CORS preflight.
      const stranger = await fetch(new URL(`/v1/sessions/${s.sessionId}/requests`, net.node.url), {
        method: 'POST',
        body: new Uint8Array(64),
      });
      expect(stranger.status).toBe(401);
      expect(((await stranger.json()) as { error: { code: string } }).error.code).toBe('E_UNAUTHENTICATED');
      // Even with the session's token (which a page could only send after a CORS preflight).
      const csrf = await fetch(new URL(`/v1/sessions/${s.sessionId}/requests`, net.node.url), {
        method: 'POST',
        headers: { 'x-firn-session-token': s.accessToken! },
        body: new Uint8Array(64),
      });
      expect(csrf.status).toBe(415);
      expect(((await csrf.json()) as { error: { code: string } }).error.code).toBe('E_UNSUPPORTED');
    } finally {
      // Nothing was served: no proof, the escrow comes back.
      await expect(s.close()).rejects.toMatchObject({ code: 'E_SESSION_EMPTY' });
    }
  });

  it('a requester cannot make the node pay for a claim and a failJob with a request that never decrypts', async () => {
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const operatorBefore = await reader.public.getBalance({ address: net.operator.address });
    let jobId: Hex | undefined;
    const realFetch = globalThis.fetch;
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      if (String(url).endsWith('/v1/jobs') && init && jobId === undefined) {
        const body = JSON.parse(String(init.body)) as {
          jobId: Hex;
          enc: Hex;
          ciphertext: string;
          inputs: Hex[];
        };
        jobId = body.jobId;
        // The job's own requester signs a body whose ciphertext is junk (1 wei escrow).
        const api = new NodeApi(net.node.url, 10_000, {
          requesterKey: net.requester.privateKey,
          scope: scope(),
        });
        globalThis.fetch = realFetch;
        await api
          .submitJob({ ...body, ciphertext: Buffer.alloc(96, 7).toString('base64') })
          .catch(() => undefined);
        // Let the node do whatever it does with it.
        for (let i = 0; i < 100; i++) {
          const r = await realFetch(new URL(`/v1/jobs/${body.jobId}`, net.node.url));
          if (r.status !== 200) break;
          const st = ((await r.json()) as { status: string }).status;
          if (st === 'failed' || st === 'proved') break;
          await new Promise((res) => setTimeout(res, 100));
        }
        throw new Error('stop after the junk submission');
      }
      return realFetch(url, init);
    }) as typeof fetch;
    try {
      await runJob(jobOptions()).catch(() => undefined);
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(jobId).toBeDefined();
    const job = await getJob(reader, jobId!);
    const operatorAfter = await reader.public.getBalance({ address: net.operator.address });
    // A request the enclave cannot even open must be refused before the node claims: no claim,
    // no failJob, no gas spent by the operator on a 1-wei job.
    expect(operatorBefore - operatorAfter).toBe(0n);
    expect(job.claimant).toBe('0x0000000000000000000000000000000000000000');
  });

  it('a failed job does not disclose the confidential model or data through the public job record', async () => {
    // The model (sealed, the provider's secret) names its input after what it reads.
    const secret = 'patient_hiv_status';
    const secretModel = encodeOnnxModel({
      name: 'm',
      nodes: [{ opType: 'Identity', inputs: [secret], outputs: ['y'] }],
      initializers: [],
      inputs: [{ name: secret, elemType: 'float', shape: ['N', 3] }],
      outputs: [{ name: 'y', elemType: 'float', shape: ['N', 3] }],
    });
    let jobId: Hex | undefined;
    await runJob(
      jobOptions({
        escrow: 10n ** 15n,
        inputs: inferenceInputs(secretModel),
        onPosted: (id: Hex) => {
          jobId = id;
        },
      }),
    ).catch(() => undefined);
    expect(jobId).toBeDefined();
    // What anyone on the network reads, and what the host keeps.
    const record = await (await fetch(new URL(`/v1/jobs/${jobId}`, net.node.url))).text();
    expect(record).toMatch(/"failed"/);
    expect(record).not.toContain(secret);
    expect(net.logs.join('\n')).not.toContain(secret);
  });

  it('the node runs a bounded number of jobs in the enclave at once, however many cheap jobs are submitted', async () => {
    const sup = net.node.supervisor as unknown as { call: (m: string, ...a: unknown[]) => Promise<unknown> };
    const realCall = sup.call.bind(sup);
    let running = 0;
    let most = 0;
    let open!: () => void;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    sup.call = async (m: string, ...a: unknown[]) => {
      if (m !== 'runJob') return realCall(m, ...a);
      running++;
      most = Math.max(most, running);
      try {
        await gate; // every job takes a while (a big model, a long training)
        return await realCall(m, ...a);
      } finally {
        running--;
      }
    };
    const realFetch = globalThis.fetch;
    // Every job is submitted before any of them can finish (the gate is closed): count the node's
    // answers to the submissions.
    let answered = 0;
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      const submission = /\/v1\/jobs$/.test(String(url)) && init?.method === 'POST';
      try {
        return await realFetch(url, init);
      } finally {
        if (submission) answered++;
      }
    }) as typeof fetch;
    const jobs = 12;
    let runs: Promise<unknown>[] = [];
    try {
      runs = Array.from({ length: jobs }, () => runJob(jobOptions({ escrow: 1n })).catch(() => undefined));
      const until = Date.now() + 90_000;
      while (answered < jobs && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      globalThis.fetch = realFetch;
      open();
      sup.call = realCall;
    }
    await Promise.all(runs);
    await net.node.jobs!.settle();
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(8);
  }, 120_000);

  it('the node does not claim a job whose claim timeout leaves no time to run it (work and gas for nothing)', async () => {
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const sup = net.node.supervisor as unknown as { call: (m: string, ...a: unknown[]) => Promise<unknown> };
    const realCall = sup.call.bind(sup);
    // A job that takes a little while in the enclave (any real model does).
    sup.call = async (m: string, ...a: unknown[]) => {
      if (m === 'runJob') await new Promise((r) => setTimeout(r, 2_500));
      return realCall(m, ...a);
    };
    const before = await reader.public.getBalance({ address: net.operator.address });
    let jobId: Hex | undefined;
    try {
      await runJob(
        jobOptions({
          escrow: 1n,
          claimTimeoutSeconds: 1,
          onPosted: (id: Hex) => {
            jobId = id;
          },
        }),
      ).catch(() => undefined);
    } finally {
      sup.call = realCall;
    }
    await net.node.jobs!.settle();
    expect(jobId).toBeDefined();
    const after = await reader.public.getBalance({ address: net.operator.address });
    expect(before - after).toBe(0n);
  }, 60_000);

  it('when the enclave has no free session slot, a session open is refused before the node claims (no gas spent, job not failed)', async () => {
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const sessionOpts = (requesterKey: Hex) => ({
      rpcUrl: net.anvil.rpcUrl,
      deployment: net.deployment,
      requesterKey,
      requesterKem: kem,
      policy: net.policy,
      roots: net.roots,
      model: { bytes: model.bytes },
      escrow: 1n,
    });
    // Two requesters hold every session slot of the enclave (8 by default) for 1 wei each: the node
    // lets one requester hold at most 4 (decision 1550), so the second is a fresh funded address.
    const { privateKeyToAccount } = await import('viem/accounts');
    const gov = createFirnClients(net.anvil.rpcUrl, net.deployer.privateKey, net.deployment);
    const second = generatePrivateKey();
    const fund = await gov.wallet!.sendTransaction({
      account: gov.wallet!.account!,
      chain: gov.wallet!.chain,
      to: privateKeyToAccount(second).address,
      value: 10n ** 18n,
    });
    await gov.public.waitForTransactionReceipt({ hash: fund });
    const held = [];
    try {
      for (let i = 0; i < 8; i++)
        held.push(await openInferenceSession(sessionOpts(i < 4 ? net.requester.privateKey : second)));
      const before = await reader.public.getBalance({ address: net.operator.address });
      const victim = await openInferenceSession(sessionOpts(net.deployer.privateKey)).then(
        (s) => ({ s, error: undefined }),
        (e: unknown) => ({ s: undefined, error: e as { code?: string } }),
      );
      if (victim.s) await victim.s.close();
      expect(victim.error?.code).toBe('E_UNAVAILABLE');
      // The node knew it could not open it: it must not have claimed (and then failed) the job.
      const after = await reader.public.getBalance({ address: net.operator.address });
      expect(before - after).toBe(0n);
    } finally {
      for (const s of held) await s.close().catch(() => undefined);
    }
  }, 120_000);

  it('four addresses funded with 1 wei each cannot hold every upload slot of the node with slow uploads', async () => {
    const { request } = await import('node:http');
    const { privateKeyToAccount } = await import('viem/accounts');
    const gov = createFirnClients(net.anvil.rpcUrl, net.deployer.privateKey, net.deployment);
    const limits = net.node.limits;
    const keys = Array.from(
      { length: Math.ceil(limits.maxConcurrentUploads / limits.maxConcurrentUploadsPerAddress) },
      () => generatePrivateKey(),
    );
    for (const k of keys) {
      const hash = await gov.wallet!.sendTransaction({
        account: gov.wallet!.account!,
        chain: gov.wallet!.chain,
        to: privateKeyToAccount(k).address,
        value: 1n,
      });
      await gov.public.waitForTransactionReceipt({ hash });
    }
    const url = new URL('/v1/artifacts', net.node.url);
    const reqs: import('node:http').ClientRequest[] = [];
    const trickle = setInterval(() => {
      for (const r of reqs) if (!r.destroyed) r.write(Buffer.alloc(1));
    }, 5_000);
    try {
      for (const k of keys) {
        const api = new NodeApi(net.node.url, 10_000, { requesterKey: k, scope: scope() });
        for (let i = 0; i < limits.maxConcurrentUploadsPerAddress; i++) {
          // A 64 MiB upload, sent one byte every 5 s (intent signed over bytes the attacker never needs to send).
          const body = new Uint8Array(64 * 1024 * 1024);
          body[0] = i;
          const headers = { 'content-type': 'application/octet-stream', ...api.uploadIntentHeaders(body) };
          const r = request(url, {
            method: 'PUT',
            headers: { ...headers, 'content-length': String(body.length) },
          });
          r.on('error', () => undefined);
          r.write(Buffer.alloc(1));
          reqs.push(r);
        }
      }
      await new Promise((r) => setTimeout(r, limits.idleTimeoutMs + 5_000));
      const mine = new NodeApi(net.node.url, 10_000, {
        requesterKey: net.requester.privateKey,
        scope: scope(),
      });
      const sealed = new Uint8Array(1000).fill(9);
      const res = await fetch(url, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', ...mine.uploadIntentHeaders(sealed) },
        body: sealed,
      });
      expect(res.status).toBe(201);
    } finally {
      clearInterval(trickle);
      for (const r of reqs) r.destroy();
    }
  }, 120_000);

  it('slow, steady bodies from a few addresses cannot take every connection slot of the node', async () => {
    const { port } = new URL(net.node.url);
    const limits = net.node.limits;
    const ips = Math.ceil(limits.maxConnections / (limits.maxConnectionsPerIp - 1)); // 9 with the defaults
    const perIp = Math.ceil((limits.maxConnections + 1) / ips); // 57: under the per-IP cap
    const socks = new Set<Socket>();
    let reopens = 2_000;
    let stopped = false;
    // Each socket starts an attestation request (4 KiB body) and sends its body one byte at a time.
    const open = (a: number) => {
      const s = connect({ port: Number(port), host: '127.0.0.1', localAddress: `127.0.0.${a + 2}` });
      s.on('error', () => undefined);
      s.once('connect', () =>
        s.write(
          'POST /v1/attestation HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{',
        ),
      );
      s.once('close', () => {
        socks.delete(s);
        if (!stopped && reopens-- > 0) setTimeout(() => open(a), 250);
      });
      socks.add(s);
    };
    // One byte per socket every 5 s: never idle for the node's idle timeout.
    const trickle = setInterval(() => {
      for (const s of socks) if (!s.destroyed) s.write(' ');
    }, 5_000);
    try {
      for (let i = 0; i < perIp; i++) {
        for (let a = 0; a < ips; a++) open(a);
        await new Promise((r) => setTimeout(r, 40)); // under the per-IP request rate
      }
      await new Promise((r) => setTimeout(r, limits.idleTimeoutMs + 5_000));
      // A legitimate client from another address still gets an answer.
      const ok = await fetch(new URL('/healthz', net.node.url), { signal: AbortSignal.timeout(5_000) })
        .then((r) => r.status)
        .catch(() => 0);
      expect(ok).toBe(200);
    } finally {
      stopped = true;
      clearInterval(trickle);
      for (const s of socks) s.destroy();
    }
  }, 120_000);
});
