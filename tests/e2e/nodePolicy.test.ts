import { createFirnClients, getJob } from '@firn/chain';
import { openInferenceSession, type RunJobOptions, runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { SessionRelay } from '../../packages/node/src/jobs/sessionRelay.ts';
import { inferenceJobOptions, requesterOptions, startTestNetwork, type TestNetwork } from './network.ts';

// The operator's job policy and the host's admission of session messages, on a live devnet node
// (docs/decisions/0890-preflight-before-claim.md). Each test performs the refused action and
// checks that nothing reached the chain or the enclave.
let net: TestNetwork;
let kem: { privateKey: Uint8Array; publicKey: Uint8Array };
const model = tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 11 });

beforeAll(async () => {
  net = await startTestNetwork();
  kem = await generateKemKeyPair();
}, 120_000);
afterAll(() => net?.stop());

const jobOptions = (extra: Partial<RunJobOptions> = {}) => inferenceJobOptions(net, kem, model.bytes, extra);

/** Count the enclave calls of one method while `f` runs. */
async function countingCalls<T>(method: string, f: () => Promise<T>): Promise<{ calls: number; out: T }> {
  const sup = net.node.supervisor as unknown as { call: (m: string, ...a: unknown[]) => Promise<unknown> };
  const real = sup.call.bind(sup);
  let calls = 0;
  sup.call = (m: string, ...a: unknown[]) => {
    if (m === method) calls++;
    return real(m, ...a);
  };
  try {
    return { out: await f(), calls };
  } finally {
    sup.call = real;
  }
}

describe('operator job policy', () => {
  it('a job under the minimum escrow is refused with 403 E_POLICY_REJECTED: not recorded, not claimed, no gas', async () => {
    const policy = net.node.jobs!.policy;
    const saved = policy.minEscrowWei;
    policy.minEscrowWei = 10n ** 12n;
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const before = await reader.public.getBalance({ address: net.operator.address });
    let jobId: Hex | undefined;
    try {
      const err = (await runJob(
        jobOptions({
          escrow: 10n ** 12n - 1n,
          onPosted: (id: Hex) => {
            jobId = id;
          },
        }),
      ).catch((e: unknown) => e)) as { code?: string; message?: string };
      expect(err.code).toBe('E_POLICY_REJECTED');
      expect(err.message).toMatch(/escrow of at least/);
    } finally {
      policy.minEscrowWei = saved;
    }
    expect(jobId).toBeDefined();
    expect(net.node.jobs!.jobs.get(jobId!)).toBeUndefined();
    expect((await getJob(reader, jobId!)).claimant).toBe('0x0000000000000000000000000000000000000000');
    expect(await reader.public.getBalance({ address: net.operator.address })).toBe(before);
  }, 60_000);

  it('at the minimum escrow and with time to run, the same job runs (the policy is not a blanket refusal)', async () => {
    const policy = net.node.jobs!.policy;
    const saved = policy.minEscrowWei;
    policy.minEscrowWei = 10n ** 12n;
    try {
      const r = await runJob(jobOptions({ escrow: 10n ** 12n }));
      expect(r.outputs.length).toBeGreaterThan(0);
    } finally {
      policy.minEscrowWei = saved;
    }
  }, 60_000);
});

describe('session message admission by the host', () => {
  it('refuses junk and replays from their header before the enclave, caps requests in flight; forged messages reaching the enclave end the session', async () => {
    const s = await openInferenceSession({
      ...requesterOptions(net, kem),
      model: { bytes: model.bytes },
      escrow: 10n ** 15n,
      // Relayed by the node (no direct connection asked, decision 1310): the host sees every request.
      transport: 'stream',
    });
    const url = new URL(`/v1/sessions/${s.sessionId}/requests`, net.node.url);
    const post = (body: Uint8Array) =>
      fetch(url, {
        method: 'POST',
        // The session's own token: admission by header is what is checked here (a sender without
        // it is refused before its header, tests/attacks/session-post-slot-hold.test.ts).
        headers: { 'content-type': 'application/octet-stream', 'x-firn-session-token': s.accessToken! },
        body,
      }).then(
        async (r) => ({
          status: r.status,
          code: ((await r.json()) as { error: { code: string } }).error.code,
        }),
        () => ({ status: 0, code: 'reset' }),
      );
    /** A message with a session request header for `seq` and a ciphertext nobody sealed. */
    const forged = (seq: bigint) => {
      const m = new Uint8Array(64).fill(5);
      m[0] = 1;
      m[1] = 0x11;
      new DataView(m.buffer).setBigUint64(2, seq, false);
      return m;
    };
    const x = { x: { type: 'float32' as const, dims: [1, 3], data: Float32Array.from([1, 2, 3]) } };
    try {
      await s.infer(x); // seq 0 accepted: the next request is seq 1
      // Requests reach the enclave side over the session's direct endpoint (decision 1240) or,
      // for sessions served by the enclave process, the pipe: neither sees any of these.
      let relayed = 0;
      const realSend = SessionRelay.prototype.send;
      SessionRelay.prototype.send = function (this: SessionRelay, m: Uint8Array) {
        relayed++;
        return realSend.call(this, m);
      };
      let junk: Awaited<ReturnType<typeof countingCalls<{ status: number; code: string }[]>>>;
      try {
        junk = await countingCalls('sessionRequest', async () => [
          await post(new Uint8Array(64).fill(1)), // no session message at all
          await post(forged(0n)), // a replay of the accepted seq 0
          await post(forged(7n)), // far ahead
        ]);
      } finally {
        SessionRelay.prototype.send = realSend;
      }
      expect(junk.calls + relayed).toBe(0);
      expect(junk.out.map((r) => r.status)).toEqual([400, 422, 422]);
      expect(junk.out.slice(1).map((r) => r.code)).toEqual(['E_CHANNEL_SEQUENCE', 'E_CHANNEL_SEQUENCE']);

      // Three forged messages with the right header at once, the enclave slow: the third is 429.
      const sup = net.node.supervisor as unknown as {
        call: (m: string, ...a: unknown[]) => Promise<unknown>;
      };
      const real = sup.call.bind(sup);
      let open!: () => void;
      const gate = new Promise<void>((r) => {
        open = r;
      });
      sup.call = async (m: string, ...a: unknown[]) => {
        if (m === 'sessionRequest') await gate;
        return real(m, ...a);
      };
      SessionRelay.prototype.send = async function (this: SessionRelay, m: Uint8Array) {
        await gate;
        return realSend.call(this, m);
      };
      try {
        const first = [post(forged(1n)), post(forged(1n))];
        await new Promise((r) => setTimeout(r, 300));
        const third = await post(forged(1n));
        expect(third).toEqual({ status: 429, code: 'E_RATE_LIMITED' });
        open();
        // At the enclave they do not open under the session keys: refused, and the session opens no
        // further request (decision 1715); its close still opens.
        expect((await Promise.all(first)).map((r) => r.code)).toEqual(['E_DECRYPT', 'E_DECRYPT']);
      } finally {
        sup.call = real;
        SessionRelay.prototype.send = realSend;
      }
      await expect(s.infer(x)).rejects.toMatchObject({ code: 'E_DECRYPT' });
    } finally {
      await s.close();
    }
  }, 60_000);
});
