import type { AnvilInstance } from '../src/anvil.ts';
import { type DeployFirnParams, deployFirn } from '../src/deploy.ts';
import type { FirnDeployment } from '../src/types.ts';

const ETH = 10n ** 18n;

/**
 * Test-only: the firn contracts on `anvil`, deployed by its first account with small test
 * parameters (1 ETH stakes and slash, 0.1 ETH claim bond, 5 % protocol fee, 30 s challenge
 * window, 60 s unbonding, 1 s governance delay, 1 h epochs, no measurement, no verifier, 50 ms
 * polling). `over` replaces any of them.
 */
export function deployTestFirn(
  anvil: AnvilInstance,
  over: Partial<Omit<DeployFirnParams, 'rpcUrl'>> = {},
): Promise<FirnDeployment> {
  return deployFirn({
    rpcUrl: anvil.rpcUrl,
    deployerKey: anvil.accounts[0]!.privateKey,
    minNodeStake: ETH,
    minVerifierStake: ETH,
    unbondingPeriod: 60,
    challengeWindow: 30,
    slashAmount: ETH,
    claimBond: ETH / 10n,
    protocolFeeBps: 500,
    governanceDelay: 1,
    epochLength: 3600,
    measurements: [],
    verifiers: [],
    pollingIntervalMs: 50,
    ...over,
  });
}
