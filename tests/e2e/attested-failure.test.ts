import { createFirnClients, firnJobMarketAbi, getWithdrawable } from '@firn/chain';
import { sealInput } from '@firn/client';
import { bytesToHex, type Hex } from '@firn/core';
import { artifactId, generateKemKeyPair, generateSigningKey, signDigest } from '@firn/crypto';
import { jobFailureDigestBytes, signedJobFailureToJson } from '@firn/enclave';
import { encodeOnnxModel } from '@firn/ml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectJobFailure } from '../helpers/expectJobFailure.ts';
import {
  increaseTime,
  requesterOptions,
  startTestNetwork,
  TINY_INFERENCE_INPUT,
  type TestNetwork,
} from './network.ts';

// Decision 1595 end to end on anvil: a requester commits to a model that its enclave run rejects
// (the requester's own work, not the node's fault). The enclave signs the failure, the node fails
// the job with failJobAttested, the requester gets its escrow back and nothing of the claim bond,
// and the operator gets the whole bond back. Under 1571 alone (before 1625) the requester was credited the bond's
// share of the claim time held.
let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

/** Run an inference job on `model` (sealed) and TINY_INFERENCE_INPUT, expecting it to fail `code`. */
async function failInference(
  kem: Awaited<ReturnType<typeof generateKemKeyPair>>,
  model: Awaited<ReturnType<typeof sealInput>>,
  code: string,
  escrow = 10n ** 15n,
) {
  const input = await sealInput(TINY_INFERENCE_INPUT, 'application/json', kem.publicKey);
  return expectJobFailure(
    net,
    {
      ...requesterOptions(net, kem),
      kind: 'inference',
      inputs: [
        { role: 'model', sealed: model },
        { role: 'input', sealed: input },
      ],
      params: {},
      escrow,
    },
    code,
  );
}

/** The job market's `eventName` events for `jobId`, from block 0. */
function jobEvents(
  reader: ReturnType<typeof createFirnClients>,
  eventName: 'JobFailureAttested' | 'ClaimBondForfeited' | 'JobFailed',
  jobId: Hex,
) {
  return reader.public.getContractEvents({
    address: net.deployment.jobMarket,
    abi: firnJobMarketAbi,
    eventName,
    fromBlock: 0n,
    args: { jobId },
  });
}

/** Bytes onnxruntime refuses to load, sealed as a model to `kem`. */
const sealJunkModel = (kem: Awaited<ReturnType<typeof generateKemKeyPair>>) =>
  sealInput(new TextEncoder().encode('{"not":"a model"}'), 'application/onnx', kem.publicKey);

/**
 * Run `before(params)` ahead of every `runJob` the node sends its enclave; returns the function
 * that puts the supervisor's own `call` back.
 */
function beforeRunJob(before: (params: Record<string, unknown>) => Promise<void>): () => void {
  const supervisor = net.node.supervisor;
  const call = supervisor.call.bind(supervisor);
  supervisor.call = (async (method: string, params: Record<string, unknown> = {}, timeoutMs?: number) => {
    if (method === 'runJob') await before(params);
    return call(method, params, timeoutMs);
  }) as typeof supervisor.call;
  return () => {
    supervisor.call = call as typeof supervisor.call;
  };
}

describe('a failure of the requester’s own committed work', () => {
  it('a model that onnxruntime refuses at run time on the committed input is attested too (1597): reason E_INPUT_INVALID', async () => {
    // First in the file: the next test moves anvil's clock 840 s ahead of the enclave's, after
    // which an attested failure's failedAt falls outside the contract's 300 s skew window.
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const operatorBefore = await getWithdrawable(reader, 'jobMarket', net.operator.address);
    const kem = await generateKemKeyPair();
    // It loads (x: [N, 3]) and its last node reshapes the 3 values of the input to [7, 7]:
    // onnxruntime's kernel refuses it at run time. Under 1595 alone this was E_JOB_FAILED, unsigned.
    const lateReshape = encodeOnnxModel({
      name: 'late-reshape',
      nodes: [
        { opType: 'Relu', inputs: ['x'], outputs: ['h'] },
        { opType: 'Reshape', inputs: ['h', 's'], outputs: ['y'] },
      ],
      initializers: [{ name: 's', dims: [2], dtype: 'int64', data: BigInt64Array.from([7n, 7n]) }],
      inputs: [{ name: 'x', elemType: 'float', shape: ['N', 3] }],
      outputs: [{ name: 'y', elemType: 'float', shape: [7, 7] }],
    });
    const model = await sealInput(lateReshape, 'application/onnx', kem.publicKey);
    const err = await failInference(kem, model, 'E_INPUT_INVALID');
    // The requester reads onnxruntime's reason; the host saw only the code.
    expect(err.message).toMatch(/cannot be reshaped to the requested shape/);
    const attested = await jobEvents(reader, 'JobFailureAttested', err.jobId);
    expect(attested).toHaveLength(1);
    const args = attested[0]!.args as { signer: string; reasonCode: number };
    expect(args.reasonCode).toBe(2); // E_INPUT_INVALID in JOB_FAILURE_REASONS
    expect(args.signer.toLowerCase()).toBe(net.node.identity!.enclaveAddress.toLowerCase());
    const bond = 10n ** 16n;
    expect((await getWithdrawable(reader, 'jobMarket', net.operator.address)) - operatorBefore).toBe(bond);
  }, 60_000);

  it('is signed by the enclave and failed with failJobAttested: the requester gains nothing from the bond', async () => {
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const operatorBefore = await getWithdrawable(reader, 'jobMarket', net.operator.address);
    const requesterBefore = await getWithdrawable(reader, 'jobMarket', net.requester.address);
    const kem = await generateKemKeyPair();
    // Bytes onnxruntime refuses to load: a deterministic function of the committed model.
    const junk = await sealJunkModel(kem);
    const escrow = 10n ** 15n;
    // Late: 840 s of the 900 s claim pass on chain between the claim and the run (a workload that
    // fails at its last layer). Under 1571 alone (before 1625) the requester would be credited 14/15 of the bond.
    const restore = beforeRunJob(() => increaseTime(net.anvil.rpcUrl, 840));
    const err = await failInference(kem, junk, 'E_MODEL_INVALID', escrow).finally(restore);
    const attested = await jobEvents(reader, 'JobFailureAttested', err.jobId);
    expect(attested).toHaveLength(1);
    expect((attested[0]!.args as { signer: string }).signer.toLowerCase()).toBe(
      net.node.identity!.enclaveAddress.toLowerCase(),
    );
    const forfeited = await jobEvents(reader, 'ClaimBondForfeited', err.jobId);
    expect(forfeited).toHaveLength(0);
    const bond = 10n ** 16n; // the test network's claim bond (0.01 ether)
    expect((await getWithdrawable(reader, 'jobMarket', net.operator.address)) - operatorBefore).toBe(bond);
    // No share of the bond was credited to the requester (ClaimBondForfeited above); its credit
    // grew by at most the escrow it reclaimed.
    const requesterGain =
      (await getWithdrawable(reader, 'jobMarket', net.requester.address)) - requesterBefore;
    expect(requesterGain <= escrow).toBe(true);
  }, 60_000);

  it('a failure the host signs itself is refused by the contract: the node falls back to failJob (1571)', async () => {
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const kem = await generateKemKeyPair();
    // A tampered artifact: the enclave fails before the run and signs nothing.
    const model = await sealJunkModel(kem);
    model.sealed[model.sealed.length - 30]! ^= 0x01;
    model.artifactId = artifactId(model.sealed);
    // The host forges a JobFailure for the job it runs (right claim facts, its own key) and
    // hands it to the node as if the enclave had emitted it.
    const supervisor = net.node.supervisor;
    const hostKey = generateSigningKey();
    const restore = beforeRunJob(async (params) => {
      const onChain = params.onChain as { workloadHash: Hex; inputCommitment: Hex };
      const failure = {
        jobId: params.jobId as Hex,
        enclaveId: net.node.identity!.enclaveId,
        measurement: net.bundleMeasurement,
        workloadHash: onChain.workloadHash,
        inputCommitment: onChain.inputCommitment,
        reasonCode: 1,
        failedAt: (await reader.public.getBlock()).timestamp,
      };
      const digest = jobFailureDigestBytes(
        { chainId: net.deployment.chainId, jobMarket: net.deployment.jobMarket },
        failure,
      );
      const signature = bytesToHex(signDigest(hostKey.privateKey, digest));
      supervisor.emit('event', 'jobFailure', signedJobFailureToJson({ failure, signature }));
    });
    try {
      const err = await failInference(kem, model, 'E_ARTIFACT_TAMPERED');
      const attested = await jobEvents(reader, 'JobFailureAttested', err.jobId);
      expect(attested).toHaveLength(0);
      // The node did present the forged failure, and the contract named why it refused it.
      const refused = net.logs.filter((l) => l.includes('failJobAttested refused') && l.includes(err.jobId));
      expect(refused.join('\n')).toMatch(/WrongSigner/);
      const failed = await jobEvents(reader, 'JobFailed', err.jobId);
      // failJob's reason: the error code in ASCII (not a signed reason code).
      expect(failed).toHaveLength(1);
      expect(
        Buffer.from((failed[0]!.args as { reason: Hex }).reason.slice(2), 'hex').toString('latin1'),
      ).toMatch(/^E_ARTIFACT_TAMPERED/);
    } finally {
      restore();
    }
  }, 60_000);
});
