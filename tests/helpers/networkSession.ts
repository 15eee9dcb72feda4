import { type InferenceSession, type OpenInferenceSessionOptions, openInferenceSession } from '@firn/client';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';

/**
 * openInferenceSession on the test network `net` as its requester, under its policy and roots,
 * on the ONNX `model` (bytes), with an escrow of 0.01 ETH: the set-up the session attack tests
 * share. `more` adds or replaces options (transport, format, escrow, requesterKem...).
 */
export function openNetworkSession(
  net: TestNetwork,
  model: Uint8Array,
  more: Partial<OpenInferenceSessionOptions> = {},
): Promise<InferenceSession> {
  return openInferenceSession({
    rpcUrl: net.anvil.rpcUrl,
    deployment: net.deployment,
    requesterKey: net.requester.privateKey,
    policy: net.policy,
    roots: net.roots,
    model: { bytes: model },
    escrow: 10n ** 16n,
    ...more,
  });
}

/** What useNetworkSession sets up: filled in before the file's first test. */
export interface NetworkSessionFixture {
  net: TestNetwork;
  session: InferenceSession;
}

/**
 * For the calling test file: before its tests, start a test network and open one inference session
 * on it as its requester (a fresh KEM key, the tiny linear model 3 -> 2 of `seed`, escrow 0.001 ETH)
 * over `transport`; after them, stop the network. The returned object holds both once set up.
 */
export function useNetworkSession(seed: number, transport: 'stream' | 'http'): NetworkSessionFixture {
  const fixture = {} as NetworkSessionFixture;
  beforeAll(async () => {
    fixture.net = await startTestNetwork();
    fixture.session = await openNetworkSession(
      fixture.net,
      tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed }).bytes,
      { requesterKem: await generateKemKeyPair(), escrow: 10n ** 15n, transport },
    );
  }, 120_000);
  afterAll(() => fixture.net?.stop());
  return fixture;
}
