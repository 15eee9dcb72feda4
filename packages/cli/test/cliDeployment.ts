import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AnvilInstance, deployFirn, type FirnDeployment } from '@firn/chain';
import { deploymentToJson } from '../src/chainArgs.ts';

const ETH = 10n ** 18n;

/**
 * Test-only: deploys firn on `anvil` (deployer: account 0; stakes and slash 1 ETH, pool deposit
 * 0.1 ETH, epoch 60 s, unbonding 60 s, challenge window 30 s, the given governance delay, seconds)
 * and writes the deployment file the CLI's `--deployment` reads to `<dir>/deployment.json`.
 * Returns the deployment and that file's path.
 */
export async function deployForCli(
  anvil: AnvilInstance,
  dir: string,
  governanceDelay: number,
): Promise<{ deployment: FirnDeployment; deploymentFile: string }> {
  const deployment = await deployFirn({
    rpcUrl: anvil.rpcUrl,
    deployerKey: anvil.accounts[0]!.privateKey,
    governanceDelay,
    minNodeStake: ETH,
    minVerifierStake: ETH,
    unbondingPeriod: 60,
    challengeWindow: 30,
    slashAmount: ETH,
    epochLength: 60,
    poolDeposit: ETH / 10n,
    pollingIntervalMs: 50,
  });
  const deploymentFile = join(dir, 'deployment.json');
  writeFileSync(deploymentFile, JSON.stringify({ rpcUrl: anvil.rpcUrl, ...deploymentToJson(deployment) }));
  return { deployment, deploymentFile };
}
