import {
  type AnvilInstance,
  approveNode,
  ChainRevertedError,
  concludeRound,
  createFirnClients,
  deployFirn,
  type FirnClients,
  type FirnDeployment,
  getNode,
  getRoundOutlook,
  joinVerifierSet,
  leaveVerifierSet,
  NodeStatus,
  registerNode,
  requestExit,
  startAnvil,
} from '@firn/chain';
import { keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';
import type { NodeDaemon } from './nodeDaemon.ts';
import { ensureRegistered } from './registration.ts';
import { startStubNodeApi } from '../../../tests/helpers/stubNodeApiServer.ts';

// Decision 1758: a round's bar never falls under the verifier stake active now, and verifiers that
// joined after the round's snapshot cannot vote in it. A registration opened before the verifier
// stake grew can then never pass and stays Pending; the node must say so, once, with the way out
// (decision 1761). Real anvil and contracts; the node is a stand-in with the registered identity.
const ETH = 10n ** 18n;
const POLL = { pollingIntervalMs: 50 };
let anvil: AnvilInstance;
let deployment: FirnDeployment;
const clientsFor = (i: number): FirnClients =>
  createFirnClients(anvil.rpcUrl, anvil.accounts[i]!.privateKey, deployment, POLL);
const measurement = keccak256(toHex('enclave-bundle-stuck-round'));

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 8 });
  deployment = await deployFirn({
    rpcUrl: anvil.rpcUrl,
    deployerKey: anvil.accounts[0]!.privateKey,
    governanceDelay: 2,
    minNodeStake: ETH,
    minVerifierStake: ETH / 2n,
    unbondingPeriod: 3600,
    challengeWindow: 600,
    slashAmount: ETH / 2n,
    epochLength: 60,
    verifiers: [2, 3, 4].map((i) => anvil.accounts[i]!.address),
    measurements: [{ teeType: 1, measurement }],
    ...POLL,
  });
  for (const i of [2, 3]) await joinVerifierSet(clientsFor(i), ETH);
}, 120_000);
afterAll(async () => {
  await anvil?.stop();
});

describe('a registration whose round can no longer pass', () => {
  it('is logged once and shown with the way out; requestExit ends it with the stake back', async () => {
    const operator = clientsFor(1);
    const enclaveId = keccak256(toHex('stuck-node'));
    const params = {
      enclaveId,
      teeType: 1,
      measurement,
      platformIdHash: keccak256(toHex('machine-stuck')),
      enclaveAddress: privateKeyToAccount(anvil.accounts[6]!.privateKey).address,
      kemPublicKey: keccak256(toHex('kem-stuck')),
      endpoint: 'http://127.0.0.1:9000',
      evidenceDigest: keccak256(toHex('evidence-stuck')),
      stake: ETH,
    };
    await registerNode(operator, params);
    // The snapshot's 2 ether can all still vote.
    expect(await getRoundOutlook(operator, enclaveId)).toMatchObject({
      notVotedStake: 2n * ETH,
      barAtLeast: 2n * ETH,
      canApprove: true,
    });
    // A member leaves: the one left carries the round alone (1720's liveness, kept by 1758).
    await leaveVerifierSet(clientsFor(3));
    expect(await getRoundOutlook(operator, enclaveId)).toMatchObject({
      notVotedStake: ETH,
      barAtLeast: ETH,
      canApprove: true,
    });
    // Then 5 ether joins: it cannot vote in this round; the bar is the 6 ether active now, capped
    // at the snapshot's 2 ether (decision 1779), of which the one member left holds only half.
    await joinVerifierSet(clientsFor(4), 5n * ETH);
    const stuck = await getRoundOutlook(operator, enclaveId);
    expect(stuck).toMatchObject({ notVotedStake: ETH, barAtLeast: 2n * ETH, canApprove: false });
    // The registry agrees: the one vote still possible decides nothing.
    await approveNode(clientsFor(2), { enclaveId, round: 1, evidenceDigest: params.evidenceDigest });
    expect((await getNode(operator, enclaveId)).status).toBe(NodeStatus.Pending);
    const undecided = await concludeRound(operator, { enclaveId, round: 1 }).catch((e: unknown) => e);
    expect((undecided as ChainRevertedError).errorName).toBe('RoundUndecided');
    expect(undecided).toBeInstanceOf(ChainRevertedError);

    const lines: string[] = [];
    const node = {
      identity: { enclaveId },
      url: params.endpoint,
      chainStatus: 'unregistered',
      registrationNotice: undefined as string | undefined,
      attest: () => Promise.reject(new Error('a live registration is not registered again')),
    };
    const following = ensureRegistered(node as unknown as NodeDaemon, {
      rpcUrl: anvil.rpcUrl,
      operatorKey: anvil.accounts[1]!.privateKey,
      deployment,
      stake: ETH,
      logger: createLogger({}, { write: (l: string) => lines.push(l) }),
      pollIntervalMs: 50,
      outlookIntervalMs: 100,
    });
    const t0 = Date.now();
    while (node.registrationNotice === undefined && Date.now() - t0 < 20_000)
      await new Promise((r) => setTimeout(r, 50));
    // Several more checks: still one warning.
    await new Promise((r) => setTimeout(r, 800));
    expect(node.chainStatus).toBe('pending');
    expect(node.registrationNotice).toMatch(/round \d+ cannot pass/);
    expect(node.registrationNotice).toContain(`requestExit(${enclaveId})`);
    expect(node.registrationNotice).toContain('of 2 ether');
    const warnings = lines.filter((l) => l.includes('registration cannot pass'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 'warn', barAtLeast: (2n * ETH).toString() });

    // The way out: the exit credits the stake back and ends the round; the node stops following it.
    await requestExit(operator, enclaveId);
    const status = await following;
    expect(status).not.toBe(NodeStatus.Pending);
    expect(node.registrationNotice).toBeUndefined();
    expect(await getRoundOutlook(operator, enclaveId)).toBeUndefined();
  }, 120_000);
});

describe('GET /v1/node', () => {
  it('shows the notice while the registration is stuck, and nothing otherwise', async () => {
    const notice = 'registration round 1 cannot pass: ...';
    const stuck = await startStubNodeApi({ registrationNotice: notice });
    const fine = await startStubNodeApi();
    try {
      expect(await (await fetch(`${stuck.url}/v1/node`)).json()).toMatchObject({ status: 'active', notice });
      expect(await (await fetch(`${fine.url}/v1/node`)).json()).not.toHaveProperty('notice');
    } finally {
      stuck.close();
      fine.close();
    }
  });

  it('is not sent when the enclave was started for another operator, or none (decision 1830)', async () => {
    const enclaveId = keccak256(toHex('operator-bound-node'));
    for (const operator of [undefined, privateKeyToAccount(anvil.accounts[5]!.privateKey).address]) {
      let attested = 0;
      const node = {
        identity: { enclaveId, ...(operator === undefined ? {} : { operator }) },
        url: 'http://127.0.0.1:9000',
        chainStatus: 'unregistered',
        attest: () => {
          attested++;
          return Promise.reject(new Error('not reached'));
        },
      };
      const sent = await ensureRegistered(node as unknown as NodeDaemon, {
        rpcUrl: anvil.rpcUrl,
        operatorKey: anvil.accounts[1]!.privateKey,
        deployment,
        stake: ETH,
        logger: createLogger({}, { write: () => undefined }),
        pollIntervalMs: 50,
      }).catch((e: unknown) => e);
      expect(sent).toMatchObject({
        code: 'E_INVALID_INPUT',
        message: expect.stringContaining(`not for ${anvil.accounts[1]!.address}`),
      });
      expect(attested).toBe(0);
      expect((await getNode(clientsFor(1), enclaveId)).status).toBe(NodeStatus.None);
    }
  });
});
