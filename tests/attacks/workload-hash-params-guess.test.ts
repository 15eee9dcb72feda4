import { createFirnClients, getJob } from '@firn/chain';
import { jobCommitments, runJob, sealInput } from '@firn/client';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';

// Attack (malicious host, or anyone reading the chain): a job's params travel sealed (1769: "inputs,
// params, progress events... travel sealed"), but the job is posted with workloadHash =
// taggedSha256(kind, canonical params, input roles and ids), unsalted. The kind and the input ids
// are public (the host gets the ids with POST /v1/jobs; the chain has their commitment), so
// whoever can list candidate params confirms them by hashing: here a training job's target column
// (the very thing the requester wants to predict), found in a list of common names. The same
// holds for an app's params (a vote, a threshold, a query). 1769 refused exactly this for the
// scaffold's signed digest ("an unsalted hash of a guessable value gives that value away").
let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 180_000);
afterAll(() => net?.stop());

const CSV = ['age,hours,defaulted', '25,40,no', '47,20,yes', '33,38,no', '52,10,yes', '29,45,no', '61,5,yes']
  .join('\n')
  .concat('\n');

describe('attack (host): guessing a job’s params from its on-chain workload hash', () => {
  it('confirms no guess of a training job’s target column', async () => {
    const kem = await generateKemKeyPair();
    const dataset = await sealInput(new TextEncoder().encode(CSV), 'text/csv', kem.publicKey);
    const params = { task: 'classification', target: 'defaulted', epochs: 1, hidden: [4], seed: 1 };
    const r = await runJob({
      rpcUrl: net.anvil.rpcUrl,
      deployment: net.deployment,
      requesterKey: net.requester.privateKey,
      requesterKem: kem,
      policy: net.policy,
      roots: net.roots,
      kind: 'training',
      inputs: [{ role: 'dataset', sealed: dataset }],
      params,
      escrow: 10n ** 15n,
      maxNodes: 1,
    });
    // What the host and the chain see: the posted workload hash, the kind, the input's role and id.
    const onChain = (await getJob(createFirnClients(net.anvil.rpcUrl, undefined, net.deployment), r.jobId))
      .workloadHash;
    const refs = [{ role: 'dataset', artifactId: dataset.artifactId }];
    const guesses: string[] = [];
    for (const target of ['label', 'class', 'target', 'y', 'income', 'churn', 'defaulted', 'fraud'])
      for (const epochs of [1, 5, 10, 50])
        if (jobCommitments('training', { ...params, target, epochs }, refs).workloadHash === onChain)
          guesses.push(`target=${target} epochs=${epochs}`);
    expect(guesses, 'the workload hash confirmed the guessed params').toEqual([]);
  }, 240_000);
});
