import { type AnvilInstance, deployFirn, type FirnDeployment, startAnvil } from '@firn/chain';
import { TEE_TYPES } from '@firn/core';
import { type DashboardServer, serveDashboard } from '@firn/dashboard';
import { parseEther } from 'viem';

/** The measurement the dashboard tests' deployment accepts for simulated nodes (32 bytes, hex). */
export const DASHBOARD_MEASUREMENT = `0x${'5a'.repeat(32)}` as const;

/** An anvil with the firn contracts and a dashboard server fronting it. */
export interface DashboardChain {
  /** anvil with 5 funded accounts: 0 deployed, 3 is the one verifier. */
  anvil: AnvilInstance;
  deployment: FirnDeployment;
  /** The read-only dashboard server over `anvil.rpcUrl`. */
  dash: DashboardServer;
}

/**
 * Start anvil (5 accounts), deploy firn (stakes 1 ETH, slash 0.5 ETH, challenge window 60 s, epoch
 * 1 h, unbonding 600 s, governance delay 1 s, the simulated TEE with DASHBOARD_MEASUREMENT, account
 * 3 as verifier) and serve the dashboard over it. Stop it with `stopDashboardChain`.
 */
export async function startDashboardChain(): Promise<DashboardChain> {
  const anvil = await startAnvil({ accounts: 5 });
  try {
    const deployment = await deployFirn({
      rpcUrl: anvil.rpcUrl,
      deployerKey: anvil.accounts[0]!.privateKey,
      governanceDelay: 1,
      minNodeStake: parseEther('1'),
      minVerifierStake: parseEther('1'),
      unbondingPeriod: 600,
      challengeWindow: 60,
      slashAmount: parseEther('0.5'),
      epochLength: 3600,
      pollingIntervalMs: 50,
      measurements: [{ teeType: TEE_TYPES.simulated, measurement: DASHBOARD_MEASUREMENT }],
      verifiers: [anvil.accounts[3]!.address],
    });
    const dash = await serveDashboard({ rpcUrl: anvil.rpcUrl, deployment });
    return { anvil, deployment, dash };
  } catch (e) {
    await anvil.stop();
    throw e;
  }
}

/** Close the dashboard, then stop anvil; either may be missing (a failed start). */
export async function stopDashboardChain(c: Partial<DashboardChain> | undefined): Promise<void> {
  await c?.dash?.close();
  await c?.anvil?.stop();
}
