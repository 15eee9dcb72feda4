import { DEV_POLICY } from '@firn/attestation';
import {
  completeAppJob,
  type DevnetStateFile,
  grantForJob,
  type JobFailedError,
  type JobPlan,
  prepareAppJob,
  type RunAppOptions,
  sealInput,
} from '@firn/client';
import { bytesToHex, type FirnError, repoRoot, TEE_TYPES } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFirnClients, isMeasurementAllowed } from '@firn/chain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTwoOwnerInferenceDemo } from '../../packages/cli/src/devnet/demo/grantDemo.ts';
import { demoModel } from '../../packages/cli/src/devnet/demo/inferenceDemo.ts';
import { appPublishCommand } from '../../packages/cli/src/commands/appPublish.ts';
import { appMeasurement } from '../../packages/cli/src/commands/run.ts';
import { startTestNetwork, stateOf, type TestNetwork } from '../e2e/network.ts';

// Attacks on jobs with several data owners (docs/decisions/1101): a requester who shows an owner a
// job plan that is not the job on chain (other params, other app, other enclave), who drops an
// owner from the recipients after the owner granted, or who reuses a grant for another job. Each
// must be refused by the owner's checks or by the enclave; the honest two-owner job works and
// neither owner can open the other's artifact.
let net: TestNetwork;
let state: DevnetStateFile;
const input = new TextEncoder().encode(
  JSON.stringify({ features: { dims: [1, 4], type: 'float32', data: [0.4, -0.2, 1.5, 0.1] } }),
);

const errCode = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'RESOLVED';
  } catch (e) {
    return (e as FirnError).code;
  }
};

describe('attacks on multi-owner app jobs', () => {
  let modelOwner: { kem: Awaited<ReturnType<typeof generateKemKeyPair>>; key: `0x${string}` };
  let model: Awaited<ReturnType<typeof sealInput>>;
  let base: RunAppOptions;

  beforeAll(async () => {
    net = await startTestNetwork();
    state = stateOf(net, net.rootPem) as DevnetStateFile;
    modelOwner = { kem: await generateKemKeyPair(), key: bytesToHex(generateSigningKey().privateKey) };
    model = await sealInput(demoModel(), 'application/onnx', modelOwner.kem.publicKey);
    base = {
      rpcUrl: net.anvil.rpcUrl,
      deployment: net.deployment,
      requesterKey: net.requester.privateKey,
      policy: DEV_POLICY,
      roots: net.roots,
      escrow: 10n ** 15n,
      app: net.bundleMeasurement,
      workload: 'inference',
      inputs: [
        { role: 'model', foreignSealed: model.sealed },
        { role: 'input', bytes: input, contentType: 'application/json' },
      ],
    };
  }, 180_000);
  afterAll(async () => {
    await net?.stop();
  });

  const grant = (plan: JobPlan, extra: Partial<Parameters<typeof grantForJob>[0]> = {}) =>
    grantForJob({
      rpcUrl: net.anvil.rpcUrl,
      deployment: net.deployment,
      plan,
      role: 'model',
      sealed: model.sealed,
      kemPrivateKey: modelOwner.kem.privateKey,
      ownerKey: modelOwner.key,
      policy: DEV_POLICY,
      roots: net.roots,
      ...extra,
    });

  it('runs the honest two-owner job; neither owner opens the other’s artifact', async () => {
    const r = await runTwoOwnerInferenceDemo(state, () => {});
    expect(r.proofOk).toBe(true);
    expect(r.dataOwnerOpensModel).not.toBe('OPENED');
    expect(r.modelOwnerOpensResult).not.toBe('OPENED');
    // The host saw only ciphertext: the input values never appear in its logs.
    expect(net.logs.join('\n')).not.toContain('1.5,0.1');
  }, 60_000);

  it('an owner refuses a plan whose params, app or inputs are not the job on chain', async () => {
    const p = await prepareAppJob({ ...base, params: { note: 'posted' } });
    expect(await errCode(grant({ ...p.plan, params: { note: 'shown to the owner' } }))).toBe('E_GRANT_SCOPE');
    expect(await errCode(grant({ ...p.plan, app: `0x${'11'.repeat(32)}` }))).toBe('E_POLICY_REJECTED');
    expect(await errCode(grant({ ...p.plan, inputs: [...p.plan.inputs].reverse() }))).toBe('E_GRANT_SCOPE');
    const other = await sealInput(demoModel(), 'application/onnx', modelOwner.kem.publicKey);
    expect(await errCode(grant(p.plan, { sealed: other.sealed }))).toBe('E_INVALID_INPUT');
    // The plan as posted is granted.
    expect((await grant(p.plan)).scope.jobId).toBe(p.plan.jobId);
  }, 60_000);

  it('an owner who must receive the result refuses a job that does not send it to them', async () => {
    const p = await prepareAppJob(base);
    expect(await errCode(grant(p.plan, { requireRecipient: modelOwner.kem.publicKey }))).toBe(
      'E_GRANT_SCOPE',
    );
    const q = await prepareAppJob({ ...base, recipients: [modelOwner.kem.publicKey] });
    expect((await grant(q.plan, { requireRecipient: modelOwner.kem.publicKey })).artifactId).toBe(
      model.artifactId,
    );
  }, 60_000);

  it('the enclave refuses a request that dropped a recipient after the owner granted', async () => {
    const p = await prepareAppJob({ ...base, recipients: [modelOwner.kem.publicKey] });
    const g = await grant(p.plan, { requireRecipient: modelOwner.kem.publicKey });
    const { 'firn.recipients': _dropped, ...params } = p.plan.params;
    const e = (await completeAppJob({ ...p, plan: { ...p.plan, params } }, [g]).catch(
      (x: unknown) => x,
    )) as JobFailedError;
    expect(e.code).toBe('E_JOB_INVALID');
    expect(e.reclaimed).toBe(true);
  }, 60_000);

  it('an app that is not allow-listed gets no node; firn app publish allow-lists it through the timelock', async () => {
    const dir = join(repoRoot(), 'examples', 'clean-room');
    const m = await appMeasurement(dir);
    expect(await errCode(prepareAppJob({ ...base, app: m }))).toBe('E_NOT_FOUND');
    const file = join(mkdtempSync(join(tmpdir(), 'firn-publish-')), 'devnet.json');
    writeFileSync(
      file,
      JSON.stringify({ ...state, accounts: { ...state.accounts, deployer: net.deployer } }),
    );
    const clients = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const allowed = () => isMeasurementAllowed(clients, { teeType: TEE_TYPES.simulated, measurement: m });
    expect(await allowed()).toBe(false);
    const r = await appPublishCommand(dir, { devnet: file, json: true });
    expect(r).toMatchObject({ measurement: m, alreadyAllowed: false });
    expect(await allowed()).toBe(true);
    expect((await appPublishCommand(dir, { devnet: file, json: true })).alreadyAllowed).toBe(true);
  }, 90_000);

  it('the enclave refuses a grant reused for another job', async () => {
    const first = await prepareAppJob(base);
    const g = await grant(first.plan);
    const second = await prepareAppJob(base);
    const e = (await completeAppJob(second, [g]).catch((x: unknown) => x)) as JobFailedError;
    expect(e.code).toBe('E_GRANT_SCOPE');
  }, 60_000);
});
