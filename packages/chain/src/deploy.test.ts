import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Hex, keccak256, parseAbi, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { type AnvilInstance, startAnvil } from './anvil.ts';
import { ChainRevertedError } from './ChainRevertedError.ts';
import { createFirnClients, type FirnClients } from './clients.ts';
import { deployFirn } from './deploy.ts';
import { allowMeasurementCall, pauseCall, setParameterCall } from './governance/actions.ts';
import {
  executeOperation,
  type GovernanceStep,
  getOperation,
  governAndExecute,
  OperationState,
  scheduleOperation,
} from './governance/timelock.ts';
import { postJob } from './jobMarket/postJob.ts';
import { allowMeasurement } from './registry/allowMeasurement.ts';
import { approveNode } from './registry/approveNode.ts';
import { getNode } from './registry/getNode.ts';
import { isMeasurementAllowed } from './registry/isMeasurementAllowed.ts';
import { listNodes } from './registry/listNodes.ts';
import { refuseNode } from './registry/refuseNode.ts';
import { registerNode } from './registry/registerNode.ts';
import { rotateKeys } from './registry/rotateKeys.ts';
import { type FirnDeployment, NodeStatus } from './types.ts';
import { getVerifierSet } from './verifierSet/getVerifierSet.ts';
import { joinVerifierSet } from './verifierSet/joinVerifierSet.ts';
import { type RegistrationEvent, watchRegistrations } from './watchRegistrations.ts';

// Runs a real anvil and the real contracts: deployment handed to the timelock, governance only
// after the delay, the stake-weighted registration vote, a key rotation, production refusing the
// simulated TEE, revert decoding. The contracts' own edge cases are covered by the forge tests.
const ETH = 10n ** 18n;
const POLL = { pollingIntervalMs: 50 };
const DELAY = 2;
let anvil: AnvilInstance;
let deployment: FirnDeployment;
const clientsFor = (i: number, d = deployment): FirnClients =>
  createFirnClients(anvil.rpcUrl, anvil.accounts[i]!.privateKey, d, POLL);
const mine = async () => {
  await clientsFor(0).public.request({ method: 'evm_mine', params: [] } as never);
};
const ownerAbi = parseAbi(['function owner() view returns (address)']);
const measurement = keccak256(toHex('enclave-bundle-v1'));

describe('deployFirn, timelock governance and registry actions on anvil', () => {
  beforeAll(async () => {
    anvil = await startAnvil({ accounts: 9 });
    deployment = await deployFirn({
      rpcUrl: anvil.rpcUrl,
      deployerKey: anvil.accounts[0]!.privateKey,
      governanceDelay: DELAY,
      minNodeStake: ETH,
      minVerifierStake: ETH / 2n,
      unbondingPeriod: 3600,
      challengeWindow: 600,
      slashAmount: ETH / 2n,
      epochLength: 60,
      verifiers: [2, 3, 4].map((i) => anvil.accounts[i]!.address),
      ...POLL,
    });
  });
  afterAll(async () => {
    await anvil?.stop();
  });

  it('derives the same accounts anvil funds', async () => {
    const c = clientsFor(0);
    const rpcAccounts = (await c.public.request({ method: 'eth_accounts' } as never)) as string[];
    expect(rpcAccounts.map((a) => a.toLowerCase())).toEqual(
      anvil.accounts.map((a) => a.address.toLowerCase()),
    );
    expect(privateKeyToAccount(anvil.accounts[3]!.privateKey).address).toBe(anvil.accounts[3]!.address);
    expect(deployment.chainId).toBe(31337);
  });

  it('hands every contract to the timelock: the deployer key alone can change nothing', async () => {
    const c = clientsFor(0);
    for (const address of [
      deployment.registry,
      deployment.verifierSet,
      deployment.jobMarket,
      deployment.rewards!,
    ])
      expect(await c.public.readContract({ address, abi: ownerAbi, functionName: 'owner' })).toBe(
        deployment.timelock,
      );
    const direct = await allowMeasurement(c, { teeType: 1, measurement }).catch((e: unknown) => e);
    expect(direct).toBeInstanceOf(ChainRevertedError);
    expect((direct as ChainRevertedError).errorName).toBe('OwnableUnauthorizedAccount');
    expect((direct as ChainRevertedError).args).toEqual([anvil.accounts[0]!.address]);
  });

  it('a governance change takes effect only after the delay, and only through the proposer', async () => {
    const gov = clientsFor(0);
    const call = allowMeasurementCall(deployment, { teeType: 1, measurement });
    // Not a proposer: refused.
    const outsider = await scheduleOperation(clientsFor(8), {
      timelock: deployment.timelock!,
      calls: [call],
    }).catch((e: unknown) => e);
    expect((outsider as ChainRevertedError).errorName).toBe('AccessControlUnauthorizedAccount');
    // Scheduled, then executed at once: refused, and nothing changed.
    const op = await scheduleOperation(gov, { timelock: deployment.timelock!, calls: [call] });
    expect((await getOperation(gov, deployment.timelock!, op.id)).state).toBe(OperationState.Waiting);
    const early = await executeOperation(gov, op).catch((e: unknown) => e);
    expect((early as ChainRevertedError).errorName).toBe('TimelockUnexpectedOperationState');
    expect(await isMeasurementAllowed(gov, { teeType: 1, measurement })).toBe(false);
    // A shorter delay than the minimum is refused too.
    const short = await scheduleOperation(gov, {
      timelock: deployment.timelock!,
      calls: [call],
      delay: BigInt(DELAY - 1),
    }).catch((e: unknown) => e);
    expect((short as ChainRevertedError).errorName).toBe('TimelockInsufficientDelay');

    // The full flow: schedule, wait (chain time), execute.
    const steps: GovernanceStep['step'][] = [];
    const t0 = Date.now();
    const done = await governAndExecute(gov, {
      timelock: deployment.timelock!,
      calls: [call],
      pollMs: 200,
      nudge: mine,
      onStep: (s) => {
        if (steps.at(-1) !== s.step) steps.push(s.step);
      },
    });
    expect(Date.now() - t0).toBeGreaterThanOrEqual((DELAY - 1) * 1000);
    expect(steps).toEqual(['scheduled', 'waiting', 'executed']);
    expect((await getOperation(gov, deployment.timelock!, done.op.id)).state).toBe(OperationState.Done);
    expect(await isMeasurementAllowed(gov, { teeType: 1, measurement })).toBe(true);
  });

  it('set-param keeps the other parameters; pause stops new jobs until unpaused', async () => {
    const gov = clientsFor(0);
    const { call, before, after } = await setParameterCall(gov, {
      name: 'market.protocolFeeBps',
      value: 300n,
    });
    expect(before.protocolFeeBps).toBe(0n);
    expect({ ...after, protocolFeeBps: 0n }).toEqual(before);
    await governAndExecute(gov, { timelock: deployment.timelock!, calls: [call], pollMs: 200, nudge: mine });
    const fee = await gov.public.readContract({
      address: deployment.jobMarket,
      abi: parseAbi(['function protocolFeeBps() view returns (uint16)']),
      functionName: 'protocolFeeBps',
    });
    expect(fee).toBe(300);
    await expect(setParameterCall(gov, { name: 'market.nope', value: 1n })).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
    });
    // An answer window as long as the 60 s epoch: no challenge could be issued (decision 1590).
    await expect(setParameterCall(gov, { name: 'rewards.answerWindow', value: 60n })).rejects.toThrow(
      /must be shorter than the epoch/,
    );

    await governAndExecute(gov, {
      timelock: deployment.timelock!,
      // Two calls in one operation (scheduleBatch; its id recomputed locally and checked).
      calls: [pauseCall(deployment, 'jobMarket', true), pauseCall(deployment, 'registry', true)],
      pollMs: 200,
      nudge: mine,
    });
    const block = await gov.public.getBlock();
    const job = {
      teeTypeMask: 2,
      allowedMeasurements: [],
      workloadHash: measurement,
      inputCommitment: measurement,
      deadline: block.timestamp + 600n,
      claimTimeout: 60n,
      escrow: 1000n,
    };
    const paused = await postJob(clientsFor(1), job).catch((e: unknown) => e);
    expect((paused as ChainRevertedError).errorName).toBe('EnforcedPause');
    const pausedReg = await registerNode(clientsFor(1), {
      enclaveId: keccak256(toHex('while-paused')),
      teeType: 1,
      measurement,
      platformIdHash: keccak256(toHex('machine-p')),
      enclaveAddress: anvil.accounts[7]!.address,
      kemPublicKey: keccak256(toHex('kem-p')),
      endpoint: 'http://127.0.0.1:9',
      evidenceDigest: keccak256(toHex('ev-p')),
      stake: ETH,
    }).catch((e: unknown) => e);
    expect((pausedReg as ChainRevertedError).errorName).toBe('EnforcedPause');
    await governAndExecute(gov, {
      timelock: deployment.timelock!,
      calls: [pauseCall(deployment, 'jobMarket', false), pauseCall(deployment, 'registry', false)],
      pollMs: 200,
      nudge: mine,
    });
    expect((await postJob(clientsFor(1), job)).jobId).toMatch(/^0x[0-9a-f]{64}$/);
  });

  it('registers a node; stake-weighted votes activate it; decodes reverts; a rotation can be refused', async () => {
    const gov = clientsFor(0);
    const operator = clientsFor(1);
    // Only admitted accounts may join.
    const stranger = await joinVerifierSet(clientsFor(7), ETH / 2n).catch((e: unknown) => e);
    expect((stranger as ChainRevertedError).errorName).toBe('NotAdmitted');
    for (const i of [2, 3, 4]) await joinVerifierSet(clientsFor(i), ETH / 2n);
    const vs = await getVerifierSet(gov);
    expect(vs.verifiers).toHaveLength(3);
    expect(vs.totalActiveStake).toBe((3n * ETH) / 2n);

    const seen: RegistrationEvent[] = [];
    const watcher = watchRegistrations(gov, { pollIntervalMs: 50, onEvent: (e) => void seen.push(e) });
    const enclave = privateKeyToAccount(anvil.accounts[6]!.privateKey);
    const enclaveId = keccak256(toHex('enclave-1'));
    const evidenceDigest = keccak256(toHex('evidence-1'));
    const params = {
      enclaveId,
      teeType: 1,
      measurement,
      platformIdHash: keccak256(toHex('machine-1')),
      enclaveAddress: enclave.address,
      kemPublicKey: keccak256(toHex('kem-1')),
      endpoint: 'http://127.0.0.1:9000',
      evidenceDigest,
      stake: ETH,
    };
    const low = await registerNode(operator, { ...params, stake: ETH - 1n }).catch((e: unknown) => e);
    expect(low).toBeInstanceOf(ChainRevertedError);
    expect((low as ChainRevertedError).code).toBe('E_CHAIN_REVERTED');
    expect((low as ChainRevertedError).errorName).toBe('StakeTooLow');
    expect((low as ChainRevertedError).args).toEqual([ETH - 1n, ETH]);
    expect((low as ChainRevertedError).message).toContain(`StakeTooLow(${ETH - 1n}, ${ETH})`);

    await registerNode(operator, params);
    expect((await getNode(gov, enclaveId)).status).toBe(NodeStatus.Pending);
    const wrong = await approveNode(clientsFor(2), {
      enclaveId,
      round: 1,
      evidenceDigest: keccak256(toHex('x')),
    }).catch((e: unknown) => e);
    expect((wrong as ChainRevertedError).errorName).toBe('EvidenceMismatch');
    // A vote names the round it judged (decision 1831): any other is refused.
    const stale = await approveNode(clientsFor(2), { enclaveId, round: 2, evidenceDigest }).catch(
      (e: unknown) => e,
    );
    expect((stale as ChainRevertedError).errorName).toBe('RoundMismatch');
    expect((stale as ChainRevertedError).args).toEqual([enclaveId, 1, 2]);
    // Two of three equal stakes are exactly 2/3: not more than 2/3, still Pending.
    await approveNode(clientsFor(2), { enclaveId, round: 1, evidenceDigest });
    await approveNode(clientsFor(3), { enclaveId, round: 1, evidenceDigest });
    expect((await getNode(gov, enclaveId)).status).toBe(NodeStatus.Pending);
    await approveNode(clientsFor(4), { enclaveId, round: 1, evidenceDigest });
    const node = await getNode(gov, enclaveId);
    expect(node.status).toBe(NodeStatus.Active);
    expect(node.enclaveAddress).toBe(enclave.address);
    expect(node.approvalStake).toBe((3n * ETH) / 2n);
    expect(node.platformIdHash).toBe(params.platformIdHash);

    // Rotation refused by more than 1/3 of the stake: old keys stay.
    const rotDigest = keccak256(toHex('evidence-rot')) as Hex;
    const rotation = {
      enclaveId,
      newEnclaveAddress: privateKeyToAccount(anvil.accounts[5]!.privateKey).address,
      newKemPublicKey: keccak256(toHex('kem-2')),
      newEvidenceDigest: rotDigest,
    };
    // A rotation pays exactly the registration fee (0 here): any other amount is refused.
    const badFee = await rotateKeys(operator, { ...rotation, registrationFee: 1n }).catch((e: unknown) => e);
    expect((badFee as ChainRevertedError).errorName).toBe('RotationFeeMismatch');
    expect((badFee as ChainRevertedError).args).toEqual([1n, 0n]);
    await rotateKeys(operator, rotation);
    await refuseNode(clientsFor(2), { enclaveId, round: 2, evidenceDigest: rotDigest, reasonCode: 7 });
    await refuseNode(clientsFor(4), { enclaveId, round: 2, evidenceDigest: rotDigest, reasonCode: 7 });
    const after = await getNode(gov, enclaveId);
    expect(after.status).toBe(NodeStatus.Active);
    expect(after.enclaveAddress).toBe(enclave.address);
    expect(after.rotationPending).toBe(false);
    expect((await listNodes(gov, { status: [NodeStatus.Active] })).map((n) => n.enclaveId)).toEqual([
      enclaveId,
    ]);

    for (let i = 0; i < 100 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    watcher.stop();
    expect(seen.map((e) => e.kind)).toEqual(['registered', 'keyRotation']);
    expect(seen[0]!.kind === 'registered' && seen[0]!.platformIdHash).toBe(params.platformIdHash);
    expect(seen[1]!.kind === 'keyRotation' && seen[1]!.newEvidenceDigest).toBe(rotDigest);
  });

  it('production parameters refuse the simulated TEE: before deploying, and on chain', async () => {
    const base = {
      rpcUrl: anvil.rpcUrl,
      deployerKey: anvil.accounts[0]!.privateKey,
      profile: 'production' as const,
      governanceDelay: 86_400,
      minNodeStake: ETH,
      minVerifierStake: ETH,
      unbondingPeriod: 3600,
      challengeWindow: 600,
      slashAmount: ETH,
      epochLength: 3600,
      ...POLL,
    };
    await expect(deployFirn({ ...base, measurements: [{ teeType: 1, measurement }] })).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      message: expect.stringMatching(/simulated/),
    });
    await expect(deployFirn({ ...base, governanceDelay: 5 })).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
    });
    const prod = await deployFirn({ ...base, measurements: [{ teeType: 2, measurement }] });
    const refused = await registerNode(clientsFor(1, prod), {
      enclaveId: keccak256(toHex('sim-node')),
      teeType: 1,
      measurement,
      platformIdHash: keccak256(toHex('machine-9')),
      enclaveAddress: anvil.accounts[8]!.address,
      kemPublicKey: keccak256(toHex('kem-9')),
      endpoint: 'http://127.0.0.1:9',
      evidenceDigest: keccak256(toHex('ev-9')),
      stake: ETH,
    }).catch((e: unknown) => e);
    expect((refused as ChainRevertedError).errorName).toMatch(/TeeTypeNotAllowed|MeasurementNotAllowed/);
  });
});
