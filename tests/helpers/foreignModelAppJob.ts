import { DEV_POLICY } from '@firn/attestation';
import {
  type GrantForJobOptions,
  grantForJob,
  type JobPlan,
  type RunAppOptions,
  sealInput,
} from '@firn/client';
import { bytesToHex } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { demoModel } from '../../packages/cli/src/devnet/demo/inferenceDemo.ts';
import type { TestNetwork } from '../e2e/network.ts';

/**
 * An app job on the test network `net` whose model belongs to another owner: a fresh model owner
 * (X25519 KEM key pair, secp256k1 signing key) seals the demo model to its own key; the requester's
 * job runs the network's bundle (workload 'inference', DEV_POLICY, escrow 0.001 ETH) on that
 * foreign-sealed model and one demo input of 4 float32 features it gives in clear. Returns
 * `options` (for runApp / prepareAppJob; spread to add more) and `grant(plan, extra)`, the owner's
 * grantForJob of the model to `plan` (`extra` adds or replaces options, e.g. the owner's clock).
 */
export async function foreignModelAppJob(net: TestNetwork) {
  const owner = { kem: await generateKemKeyPair(), key: bytesToHex(generateSigningKey().privateKey) };
  const model = await sealInput(demoModel(), 'application/onnx', owner.kem.publicKey);
  const input = new TextEncoder().encode(
    JSON.stringify({ features: { dims: [1, 4], type: 'float32', data: [0.4, -0.2, 1.5, 0.1] } }),
  );
  const options: RunAppOptions = {
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
  const grant = (plan: JobPlan, extra: Partial<GrantForJobOptions> = {}) =>
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
      ...extra,
    });
  return { owner, model, options, grant };
}
