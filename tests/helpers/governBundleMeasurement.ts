import {
  allowMeasurementCall,
  createFirnClients,
  type FirnClients,
  governAndExecute,
  revokeMeasurementCall,
} from '@firn/chain';
import { TEE_TYPES } from '@firn/core';
import { increaseTime, type TestNetwork } from '../e2e/network.ts';

/**
 * Governance (the network's deployer, through the timelock) allows or revokes the network's node
 * measurement (simulated TEE, `net.bundleMeasurement`), advancing the chain's clock to pass the
 * delay. Returns the deployer's clients for further calls.
 */
export async function governBundleMeasurement(
  net: TestNetwork,
  action: 'allow' | 'revoke',
): Promise<FirnClients> {
  const gov = createFirnClients(net.anvil.rpcUrl, net.deployer.privateKey, net.deployment, {
    pollingIntervalMs: 50,
  });
  const m = { teeType: TEE_TYPES.simulated, measurement: net.bundleMeasurement };
  await governAndExecute(gov, {
    timelock: net.deployment.timelock!,
    calls: [
      action === 'allow' ? allowMeasurementCall(net.deployment, m) : revokeMeasurementCall(net.deployment, m),
    ],
    pollMs: 100,
    nudge: () => increaseTime(net.anvil.rpcUrl, 1),
  });
  return gov;
}
