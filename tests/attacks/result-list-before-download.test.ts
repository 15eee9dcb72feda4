import { DEV_POLICY } from '@firn/attestation';
import { type RunAppOptions, runApp, runJob } from '@firn/client';
import type { FirnError } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModel } from '../../packages/cli/src/devnet/demo/inferenceDemo.ts';
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
    // The requester's GETs only (NodeApi refuses redirects): the in-process verifiers read the
    // same altered answer and check the outputs' availability on their own, through
    // fetchFromNode, which sends with a dispatcher of its own.
    if (
      /\/v1\/artifacts\/0x[0-9a-f]{64}$/i.test(u) &&
      (init?.method ?? 'GET') === 'GET' &&
      init?.redirect === 'manual' &&
      (init as { dispatcher?: unknown }).dispatcher === undefined
    )
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

// The sizes a host lists are not in the Work Proof: a host that overstated one (up to the ~514 MiB
// the answer's schema allows) made the requester read that much before the hash check. The
// enclave's sealed summary now gives each output's sealed size (decision 1600), and a listing
// with another size is refused before any download.
describe('a host that overstates an output size 100x', () => {
  it('is E_PROOF_INVALID naming the sealed size, and nothing is downloaded', async () => {
    const kem = await generateKemKeyPair();
    const opts = await tinyInferenceJob(net, kem, [1, 2, 3]);
    const err = (await withHost(
      (body) => {
        body.outputs = body.outputs.map((o) => {
          const { sealed: _inline, ...rest } = o;
          return { ...rest, size: (o.size as number) * 100 };
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
    expect(err?.message).toMatch(/is listed as \d+ bytes, the enclave sealed \d+/);
  }, 60_000);
});

describe('runApp against a host that lists outputs the Work Proof does not commit to', () => {
  const appJob = (): RunAppOptions => ({
    rpcUrl: net.anvil.rpcUrl,
    deployment: net.deployment,
    requesterKey: net.requester.privateKey,
    policy: DEV_POLICY,
    roots: net.roots,
    escrow: 10n ** 15n,
    app: net.bundleMeasurement,
    workload: 'inference',
    inputs: [
      { role: 'model', bytes: demoModel(), contentType: 'application/onnx' },
      {
        role: 'input',
        bytes: new TextEncoder().encode(
          JSON.stringify({ features: { dims: [1, 4], type: 'float32', data: [0.4, -0.2, 1.5, 0.1] } }),
        ),
        contentType: 'application/json',
      },
    ],
  });

  it('an honest app result verifies', async () => {
    const r = await withHost(
      () => {},
      async () => runApp(appJob()),
    );
    expect(r.proofCheck).toEqual({ ok: true, reasons: [] });
  }, 60_000);

  it('another artifact listed under the output role is E_PROOF_INVALID, and nothing is downloaded', async () => {
    const err = (await withHost(
      (body) => {
        body.outputs = body.outputs.map((o) => {
          const { sealed: _inline, ...rest } = o;
          return { ...rest, artifactId: `0x${'ab'.repeat(32)}`, size: 1000 };
        });
      },
      async (gets) => {
        const e = await runApp(appJob()).then(
          () => undefined,
          (x: unknown) => x,
        );
        expect(gets).toEqual([]);
        return e;
      },
    )) as FirnError | undefined;
    expect(err?.code).toBe('E_PROOF_INVALID');
    expect(err?.message).toMatch(/nothing was downloaded/);
  }, 60_000);
});
