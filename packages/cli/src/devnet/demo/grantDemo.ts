import { DEV_POLICY } from '@firn/attestation';
import { bytesToHex, FirnError, type Hex } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { demoModel } from './inferenceDemo.ts';
import {
  deploymentFromState,
  devnetRoots,
  type DevnetStateFile,
  grantForJob,
  openOutput,
  runApp,
  sealInput,
} from '@firn/client';

export interface TwoOwnerDemoResult {
  jobId: Hex;
  node: string;
  output: unknown;
  proofOk: boolean;
  /** The data owner tried to open the model with its key: refused (code). */
  dataOwnerOpensModel: string;
  /** The model owner tried to open the result with its key: refused (code). */
  modelOwnerOpensResult: string;
}

async function refusedCode(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
    return 'OPENED';
  } catch (e) {
    return (e as FirnError).code ?? 'E_DECRYPT';
  }
}

/**
 * Devnet demo of a job with two owners (docs/decisions/1101): the first-party inference app runs a
 * model that a model owner sealed to its own key and granted to the attested enclave for this job
 * only, on inputs of the data owner (the requester), who alone receives the result. Neither can
 * open the other's artifact, which the demo checks by trying.
 */
export async function runTwoOwnerInferenceDemo(
  state: DevnetStateFile,
  log: (line: string) => void,
): Promise<TwoOwnerDemoResult> {
  const deployment = deploymentFromState(state);
  const { roots, gpuRoots } = devnetRoots(state);
  // The model owner: its own KEM key (its model is sealed to it) and its own signing key (needs no funds).
  const modelOwnerKem = await generateKemKeyPair();
  const modelOwnerKey = generateSigningKey();
  const model = await sealInput(demoModel(), 'application/onnx', modelOwnerKem.publicKey);
  log(`two owners: model owner sealed its model (artifact ${model.artifactId}) to its own key`);
  const dataOwnerKem = await generateKemKeyPair();
  const input = { features: { dims: [1, 4], type: 'float32', data: [0.4, -0.2, 1.5, 0.1] } };
  const r = await runApp({
    rpcUrl: state.rpcUrl,
    deployment,
    requesterKey: state.accounts.requester.privateKey,
    requesterKem: dataOwnerKem,
    policy: DEV_POLICY,
    roots,
    gpuRoots,
    escrow: 10n ** 16n,
    app: state.measurement,
    workload: 'inference',
    inputs: [
      { role: 'model', foreignSealed: model.sealed },
      {
        role: 'input',
        bytes: new TextEncoder().encode(JSON.stringify(input)),
        contentType: 'application/json',
      },
    ],
    collectGrants: async (plan) => {
      log(
        `two owners: job ${plan.jobId} posted for enclave ${plan.enclaveId}; the model owner checks it and grants`,
      );
      const grant = await grantForJob({
        rpcUrl: state.rpcUrl,
        deployment,
        plan,
        role: 'model',
        sealed: model.sealed,
        kemPrivateKey: modelOwnerKem.privateKey,
        ownerKey: bytesToHex(modelOwnerKey.privateKey),
        policy: DEV_POLICY,
        roots,
        gpuRoots,
      });
      return [grant];
    },
  });
  const output = JSON.parse(new TextDecoder().decode(r.outputs[0]!.bytes)) as unknown;
  log(`two owners: the data owner's decrypted result ${JSON.stringify(output)}`);
  log(
    `two owners: proof ${r.proofCheck.ok ? 'verified off chain' : `INVALID: ${r.proofCheck.reasons.join('; ')}`}`,
  );
  const dataOwnerOpensModel = await refusedCode(() => openOutput(model.sealed, dataOwnerKem.privateKey));
  const modelOwnerOpensResult = await refusedCode(() =>
    openOutput(r.sealedOutputs[0]!.sealed, modelOwnerKem.privateKey),
  );
  log(
    `two owners: data owner opening the model: ${dataOwnerOpensModel}; model owner opening the result: ${modelOwnerOpensResult}`,
  );
  if (dataOwnerOpensModel === 'OPENED' || modelOwnerOpensResult === 'OPENED')
    throw new FirnError('E_INTERNAL', 'an owner opened an artifact that is not theirs');
  return {
    jobId: r.jobId,
    node: r.node.endpoint,
    output,
    proofOk: r.proofCheck.ok,
    dataOwnerOpensModel,
    modelOwnerOpensResult,
  };
}
