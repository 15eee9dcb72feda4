import { DEV_POLICY } from '@firn/attestation';
import { createFirnClients } from '@firn/chain';
import { completeAppJob, grantForJob, prepareAppJob, sealInput } from '@firn/client';
import { bytesToHex, type FirnError } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModel } from '../../packages/cli/src/devnet/demo/inferenceDemo.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';

// A data owner whose host clock runs 30 minutes ahead of the chain, asked to grant a model to a
// job whose plan lasts 10 minutes. The owner judged "the plan has passed" on the later of chain
// time and its own clock, so it refused (E_GRANT_EXPIRED) a job the chain and the enclave would
// still run: the requester's job could never start. The contract enforces the deadline and the
// enclave's clock follows the chain, so the owner judges on chain time alone (decision 1460).
const AHEAD = 1800;
let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

describe('a data owner on a host clock ahead of the chain', () => {
  it('grants to a job whose plan has not passed on chain, and the job runs', async () => {
    const owner = { kem: await generateKemKeyPair(), key: bytesToHex(generateSigningKey().privateKey) };
    const model = await sealInput(demoModel(), 'application/onnx', owner.kem.publicKey);
    const input = new TextEncoder().encode(
      JSON.stringify({ features: { dims: [1, 4], type: 'float32', data: [0.4, -0.2, 1.5, 0.1] } }),
    );
    const prepared = await prepareAppJob({
      rpcUrl: net.anvil.rpcUrl,
      deployment: net.deployment,
      requesterKey: net.requester.privateKey,
      policy: DEV_POLICY,
      roots: net.roots,
      escrow: 10n ** 15n,
      app: net.bundleMeasurement,
      workload: 'inference',
      deadlineSeconds: 600,
      inputs: [
        { role: 'model', foreignSealed: model.sealed },
        { role: 'input', bytes: input, contentType: 'application/json' },
      ],
    });
    const ownerNow = () => Math.floor(Date.now() / 1000) + AHEAD;
    expect(prepared.plan.expiresAt).toBeLessThan(ownerNow());
    const ask = (plan: typeof prepared.plan) =>
      grantForJob({
        rpcUrl: net.anvil.rpcUrl,
        deployment: net.deployment,
        plan,
        role: 'model',
        sealed: model.sealed,
        kemPrivateKey: owner.kem.privateKey,
        ownerKey: owner.key,
        policy: DEV_POLICY,
        roots: net.roots,
        now: ownerNow,
      }).catch((e: FirnError) => e);
    // A plan that has passed on chain is still refused.
    const chainNow = Number(
      (await createFirnClients(net.anvil.rpcUrl, undefined, net.deployment).public.getBlock()).timestamp,
    );
    const passed = await ask({ ...prepared.plan, expiresAt: chainNow - 1 });
    expect((passed as FirnError).code).toBe('E_GRANT_EXPIRED');
    const grant = await ask(prepared.plan);
    if (grant instanceof Error) throw grant;
    expect(grant.expiresAt).toBe(prepared.plan.expiresAt);
    const r = await completeAppJob(prepared, [grant]);
    expect(r.proofCheck).toEqual({ ok: true, reasons: [] });
    expect(r.outputs.length).toBeGreaterThan(0);
  }, 60_000);
});
