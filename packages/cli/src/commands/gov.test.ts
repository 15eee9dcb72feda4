import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  allowMeasurementCall,
  type AnvilInstance,
  createFirnClients,
  type FirnDeployment,
  firnJobMarketAbi,
  firnRewardsAbi,
  firnRewardsBytecode,
  getOperation,
  isMeasurementAllowed,
  moveUnallocatedCall,
  OperationState,
  pauseCall,
  requireWallet,
  setRewardPoolCall,
  startAnvil,
  unallocatedOf,
} from '@firn/chain';
import { type Address, getAddress, keccak256, toHex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployForCli } from '../../test/cliDeployment.ts';
import { checkRewardPool, governanceProgress, measurementArgs, runGovernance } from './gov.ts';
import { rewardsShow } from './rewards.ts';

// The `firn gov` and `firn rewards` cores against a real anvil and the real contracts (no nodes):
// the timelock flow with its progress lines, a key without the proposer role refused.
const ETH = 10n ** 18n;
const dir = mkdtempSync(join(tmpdir(), 'firn-gov-'));
let anvil: AnvilInstance;
let deployment: FirnDeployment;
let deploymentFile: string;
const measurement = keccak256(toHex('gov-cli-measurement'));

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 4 });
  ({ deployment, deploymentFile } = await deployForCli(anvil, dir, 2));
  for (const i of [0, 3]) writeFileSync(join(dir, `key-${i}`), anvil.accounts[i]!.privateKey);
}, 60_000);
afterAll(() => anvil?.stop());

describe('firn gov / firn rewards', () => {
  it('allow-measurement: schedules, waits out the delay, executes; prints each stage', async () => {
    const lines: string[] = [];
    const stream = new PassThrough() as unknown as NodeJS.WriteStream;
    (stream as unknown as PassThrough).on('data', (d: Buffer) =>
      lines.push(...d.toString().trim().split('\n')),
    );
    const r = await runGovernance(
      { deployment: deploymentFile, keyFile: join(dir, 'key-0'), mine: true },
      'allow-measurement',
      async (c) => ({
        calls: [allowMeasurementCall(c.addresses, { teeType: 2, measurement })],
      }),
      governanceProgress(stream),
    );
    const reader = createFirnClients(anvil.rpcUrl, undefined, deployment);
    expect(await isMeasurementAllowed(reader, { teeType: 2, measurement })).toBe(true);
    expect((await getOperation(reader, deployment.timelock!, r.operationId)).state).toBe(OperationState.Done);
    expect(r.delaySeconds).toBe(2);
    expect(lines[0]).toMatch(/^scheduled operation 0x[0-9a-f]{64}/);
    expect(lines.some((l) => /^waiting for the timelock delay: \d\/2 s$/.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/^executed operation/);
  });

  it('refuses a key without the proposer role, with the decoded error', async () => {
    await expect(
      runGovernance(
        { deployment: deploymentFile, keyFile: join(dir, 'key-3'), mine: true },
        'pause',
        async (c) => ({
          calls: [pauseCall(c.addresses, 'jobMarket', true)],
        }),
      ),
    ).rejects.toMatchObject({ code: 'E_CHAIN_REVERTED', errorName: 'AccessControlUnauthorizedAccount' });
  });

  it('rewards show reads the pool', async () => {
    const s = await rewardsShow({ deployment: deploymentFile });
    expect(BigInt(s.pool.receivedWei)).toBe(ETH / 10n);
    expect(s.pool.epochLength).toBe('60');
    expect(s.nodes).toEqual([]);
  });
});

describe('firn gov set-reward-pool / move-unallocated', () => {
  it("one timelock operation moves the network and the old pool's unallocated balance to the new pool", async () => {
    const owner = createFirnClients(anvil.rpcUrl, anvil.accounts[0]!.privateKey, deployment);
    const wallet = requireWallet(owner);
    const hash = await wallet.deployContract({
      abi: firnRewardsAbi,
      bytecode: firnRewardsBytecode,
      args: [deployment.timelock!, deployment.registry, deployment.verifierSet, 60n, 10n, 1, 1000, 2000],
      account: wallet.account,
      chain: wallet.chain,
    });
    const pool2 = getAddress((await owner.public.waitForTransactionReceipt({ hash })).contractAddress!);
    await expect(checkRewardPool(owner, pool2)).resolves.toBeUndefined();
    const old = getAddress(deployment.rewards!);
    const before = await unallocatedOf(owner, old);
    expect(before).toEqual({ registryPool: old, unallocated: ETH / 10n, openWorkedEpochs: 0n });

    await runGovernance(
      { deployment: deploymentFile, keyFile: join(dir, 'key-0'), mine: true },
      'set-reward-pool',
      async (c) => ({ calls: [setRewardPoolCall(c.addresses, pool2), moveUnallocatedCall(old)] }),
      () => {},
    );
    const market = await owner.public.readContract({
      address: deployment.jobMarket,
      abi: firnJobMarketAbi,
      functionName: 'rewardPool',
    });
    expect(market).toBe(pool2);
    const read = (address: Address, functionName: 'totalReceived' | 'totalMoved') =>
      owner.public.readContract({ address, abi: firnRewardsAbi, functionName });
    expect(await read(pool2, 'totalReceived')).toBe(ETH / 10n);
    expect(await read(old, 'totalMoved')).toBe(ETH / 10n);
    expect(await unallocatedOf(owner, old)).toEqual({
      registryPool: pool2,
      unallocated: 0n,
      openWorkedEpochs: 0n,
    });
  });
});

describe('firn gov set-reward-pool pre-check', () => {
  it('refuses, before scheduling, a pool built for another registry and a contract that is no pool', async () => {
    const owner = createFirnClients(anvil.rpcUrl, anvil.accounts[0]!.privateKey, deployment);
    const wallet = requireWallet(owner);
    // The same FirnRewards bytecode with another registry address (here the market's: any other).
    const hash = await wallet.deployContract({
      abi: firnRewardsAbi,
      bytecode: firnRewardsBytecode,
      args: [deployment.timelock!, deployment.jobMarket, deployment.verifierSet, 60n, 10n, 1, 1000, 2000],
      account: wallet.account,
      chain: wallet.chain,
    });
    const foreign = getAddress((await owner.public.waitForTransactionReceipt({ hash })).contractAddress!);
    await expect(checkRewardPool(owner, foreign)).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      message: expect.stringMatching(/serves registry .*not this registry/),
    });
    // The data ledger names this registry but has no verifierSet(): a partial back-pointer is no pool.
    await expect(checkRewardPool(owner, deployment.dataLedger)).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
    });
    // The chain refuses it the same way (RewardPoolMismatch) if the pre-check is skipped.
    await expect(
      runGovernance(
        { deployment: deploymentFile, keyFile: join(dir, 'key-0'), mine: true },
        'set-reward-pool',
        async (c) => ({ calls: [setRewardPoolCall(c.addresses, foreign)] }),
        () => {},
      ),
    ).rejects.toMatchObject({ code: 'E_CHAIN_REVERTED', errorName: 'RewardPoolMismatch' });
  });
});

describe('measurement arguments', () => {
  const m = `0x${'ab'.repeat(32)}`;
  it('takes them positionally or as --measurement/--tee, and names what is missing', () => {
    expect(measurementArgs('tdx', m, { tee: 'simulated' })).toEqual({ tee: 'tdx', m });
    expect(measurementArgs(undefined, undefined, { tee: 'simulated', measurement: m })).toEqual({
      tee: 'simulated',
      m,
    });
    expect(measurementArgs('sgx', undefined, { tee: 'simulated', measurement: m })).toEqual({
      tee: 'sgx',
      m,
    });
    expect(() => measurementArgs(undefined, undefined, { tee: 'simulated' })).toThrow(/--measurement/);
  });
});
