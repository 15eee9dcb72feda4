import { runJob } from '@firn/client';
import type { FirnError } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { JOB_RESULT_PATH, tinyInferenceJob, urlOf } from '../helpers/tinyInferenceJob.ts';

// The attack: a host that answers GET /v1/jobs/{id}/result with an output list of its choosing
// (here the requester's own sealed input, served from its artifact store, under the output's
// role) to make the requester download what the Work Proof never committed to. runJob checks the
// proof and the enclave's sealed summary against the listed (role, artifact id) list first and
// refuses it with E_PROOF_INVALID before any GET /v1/artifacts/{id}.
let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

/** Run `f` with fetch wrapped: result answers pass through `alter`; artifact GETs are recorded. */
async function withHost<T>(
  alter: (result: { outputs: Record<string, unknown>[] }) => void,
  f: (artifactGets: string[]) => Promise<T>,
): Promise<T> {
  const realFetch = globalThis.fetch;
  const artifactGets: string[] = [];
  globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
    const u = urlOf(url);
    if (/\/v1\/artifacts\/0x[0-9a-f]{64}$/i.test(u) && (init?.method ?? 'GET') === 'GET')
      artifactGets.push(u);
    const res = await realFetch(url, init);
    if (!JOB_RESULT_PATH.test(u) || !res.ok) return res;
    const body = (await res.json()) as { outputs: Record<string, unknown>[] };
    alter(body);
    return new Response(JSON.stringify(body), {
      status: 200,
      headers: { 'content-type': 'application/json' },
    });
  }) as typeof fetch;
  try {
    return await f(artifactGets);
  } finally {
    globalThis.fetch = realFetch;
  }
}

describe('a host that lists outputs the Work Proof does not commit to', () => {
  it('an honest result is verified, then downloaded and opened', async () => {
    const kem = await generateKemKeyPair();
    const r = await withHost(
      () => {},
      async () => runJob(await tinyInferenceJob(net, kem, [1, 2, 3])),
    );
    expect(r.proofCheck).toEqual({ ok: true, reasons: [] });
    expect(r.outputs.length).toBeGreaterThan(0);
  }, 60_000);

  it('an uncommitted artifact listed as the output is E_PROOF_INVALID, and nothing is downloaded', async () => {
    const kem = await generateKemKeyPair();
    const opts = await tinyInferenceJob(net, kem, [1, 2, 3]);
    const input = opts.inputs.find((i) => i.role === 'input')!;
    const swapped = 'sealed' in input ? input.sealed : undefined;
    const err = (await withHost(
      (body) => {
        body.outputs = body.outputs.map((o) => {
          const { sealed: _inline, ...rest } = o;
          return { ...rest, artifactId: swapped!.artifactId, size: swapped!.sealed.length };
        });
      },
      async (gets) => {
        const e = await runJob(opts).then(
          () => undefined,
          (x: unknown) => x,
        );
        expect(gets).toEqual([]);
        return e;
      },
    )) as FirnError | undefined;
    expect(err?.code).toBe('E_PROOF_INVALID');
    expect(err?.message).toMatch(/nothing was downloaded/);
    expect(err?.message).toMatch(/outputCommitment differs|own summary/);
  }, 60_000);
});
