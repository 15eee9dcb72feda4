import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AnvilInstance, deployFirn, type FirnDeployment } from '@firn/chain';
import { deploymentToJson } from '../src/chainArgs.ts';
import type { DeployOptions } from '../src/commands/deploy.ts';

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

/**
 * Test-only: `firn deploy` options for a devnet deployment from the deployer key in `keyFile` to
 * `rpc`, written to `out` (governance delay 2 s, stakes 1 ETH, slash 0.5 ETH, claim bond 0.001 ETH,
 * no registration fee, epoch 30 s, unbonding and challenge window 60 s, no measurements, verifiers,
 * proposers or executors).
 */
export function devnetDeployOptions(rpc: string, keyFile: string, out: string): DeployOptions {
  return {
    rpc,
    keyFile,
    out,
    profile: 'devnet',
    governanceDelay: '2',
    minNodeStake: '1',
    minVerifierStake: '1',
    unbondingPeriod: '60',
    challengeWindow: '60',
    slash: '0.5',
    claimBond: '0.001',
    registrationFee: '0',
    epochLength: '30',
    measurement: [],
    verifier: [],
    proposer: [],
    executor: [],
  };
}
