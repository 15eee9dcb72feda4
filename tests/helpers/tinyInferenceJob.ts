import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import type { RunJobOptions } from '@firn/client';
import { sealInput } from '@firn/client';
import type { Hex } from '@firn/core';
import { expect } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { requesterOptions, type TestNetwork } from '../e2e/network.ts';

/** A URL as a string, whatever form fetch was given it in. */
export const urlOf = (url: string | URL | Request): string =>
  typeof url === 'string' ? url : url instanceof URL ? url.href : url.url;

/**
 * The job's status once it left Open and Claimed (Proved, Paid, Failed, ...), read every 300 ms for
 * at most 60 s (then whatever it is): where a host's attack left the requester's escrow.
 */
export async function settledStatus(net: TestNetwork, jobId: Hex): Promise<JobStatus> {
  const clients = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
  let status = JobStatus.Open;
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    status = (await getJob(clients, jobId)).status;
    if (status !== JobStatus.Claimed && status !== JobStatus.Open) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  return status;
}

/** The node API path of a job's result (GET /v1/jobs/{jobId}/result), the one a withholding host serves or not. */
export const JOB_RESULT_PATH = /\/v1\/jobs\/0x[0-9a-f]{64}\/result$/i;

/**
 * Options of an inference job of the tiny linear model (3 inputs) on one [1, 3] float32 tensor
 * (`data`), both sealed to the requester's `kem` key, escrow 0.001 ether; `extra` overrides.
 */
export async function tinyInferenceJob(
  net: TestNetwork,
  kem: { privateKey: Uint8Array; publicKey: Uint8Array },
  data: [number, number, number],
  extra: Partial<RunJobOptions> = {},
): Promise<RunJobOptions> {
  const model = await sealInput(tinyLinearModel().bytes, 'application/onnx', kem.publicKey);
  const input = await sealInput(
    new TextEncoder().encode(JSON.stringify({ x: { dims: [1, 3], type: 'float32', data } })),
    'application/json',
    kem.publicKey,
  );
  return {
    ...requesterOptions(net, kem),
    kind: 'inference',
    inputs: [
      { role: 'model', sealed: model },
      { role: 'input', sealed: input },
    ],
    params: {},
    escrow: 10n ** 15n,
    ...extra,
  };
}

/** Waits (up to `timeoutMs`) for every verifier of the network to judge `jobId`, then asserts each found it valid and did not dispute. */
export async function expectVerifiersAccepted(
  net: TestNetwork,
  jobId: Hex,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    Date.now() < deadline &&
    net.verifiers.some((v) => !v.proofs?.verdicts.some((x) => x.jobId === jobId))
  )
    await new Promise((res) => setTimeout(res, 200));
  for (const v of net.verifiers)
    expect(v.proofs?.verdicts.find((x) => x.jobId === jobId)).toMatchObject({ ok: true, disputed: false });
}
