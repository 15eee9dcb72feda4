import { createFirnClients, firnJobMarketAbi, getWithdrawable } from '@firn/chain';
import { sealInput } from '@firn/client';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectJobFailure } from '../helpers/expectJobFailure.ts';
import { requesterOptions, startTestNetwork, TINY_INFERENCE_INPUT, type TestNetwork } from './network.ts';

// Decision 1595 end to end on anvil: a requester commits to a model that its enclave run rejects
// (the requester's own work, not the node's fault). The enclave signs the failure, the node fails
// the job with failJobAttested, the requester gets its escrow back and nothing of the claim bond,
// and the operator gets the whole bond back. Under 1571 alone the requester was credited the bond's
// share of the claim time held.
let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

describe('a failure of the requester’s own committed work', () => {
  it('is signed by the enclave and failed with failJobAttested: the requester gains nothing from the bond', async () => {
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const operatorBefore = await getWithdrawable(reader, 'jobMarket', net.operator.address);
    const requesterBefore = await getWithdrawable(reader, 'jobMarket', net.requester.address);
    const kem = await generateKemKeyPair();
    // Bytes onnxruntime refuses to load: a deterministic function of the committed model.
    const junk = await sealInput(
      new TextEncoder().encode('{"not":"a model"}'),
      'application/onnx',
      kem.publicKey,
    );
    const input = await sealInput(TINY_INFERENCE_INPUT, 'application/json', kem.publicKey);
    const escrow = 10n ** 15n;
    const err = await expectJobFailure(
      net,
      {
        ...requesterOptions(net, kem),
        kind: 'inference',
        inputs: [
          { role: 'model', sealed: junk },
          { role: 'input', sealed: input },
        ],
        params: {},
        escrow,
      },
      'E_MODEL_INVALID',
    );
    const ofJob = { fromBlock: 0n, args: { jobId: err.jobId } } as const;
    const attested = await reader.public.getContractEvents({
      address: net.deployment.jobMarket,
      abi: firnJobMarketAbi,
      eventName: 'JobFailureAttested',
      ...ofJob,
    });
    expect(attested).toHaveLength(1);
    expect((attested[0]!.args as { signer: string }).signer.toLowerCase()).toBe(
      net.node.identity!.enclaveAddress.toLowerCase(),
    );
    const forfeited = await reader.public.getContractEvents({
      address: net.deployment.jobMarket,
      abi: firnJobMarketAbi,
      eventName: 'ClaimBondForfeited',
      ...ofJob,
    });
    expect(forfeited).toHaveLength(0);
    const bond = 10n ** 16n; // the test network's claim bond (0.01 ether)
    expect((await getWithdrawable(reader, 'jobMarket', net.operator.address)) - operatorBefore).toBe(bond);
    // No share of the bond was credited to the requester (ClaimBondForfeited above); its credit
    // grew by at most the escrow it reclaimed.
    const requesterGain =
      (await getWithdrawable(reader, 'jobMarket', net.requester.address)) - requesterBefore;
    expect(requesterGain <= escrow).toBe(true);
  }, 60_000);
});
