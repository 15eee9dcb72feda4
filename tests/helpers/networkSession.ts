import { type InferenceSession, type OpenInferenceSessionOptions, openInferenceSession } from '@firn/client';
import type { TestNetwork } from '../e2e/network.ts';

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
