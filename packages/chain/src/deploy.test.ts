import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Hex, keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { type AnvilInstance, startAnvil } from './anvil.ts';
import { ChainRevertedError } from './ChainRevertedError.ts';
import { createFirnClients, type FirnClients } from './clients.ts';
import { deployFirn } from './deploy.ts';
import { allowMeasurement } from './registry/allowMeasurement.ts';
import { approveNode } from './registry/approveNode.ts';
import { getNode } from './registry/getNode.ts';
import { listNodes } from './registry/listNodes.ts';
import { refuseNode } from './registry/refuseNode.ts';
import { registerNode } from './registry/registerNode.ts';
import { rotateKeys } from './registry/rotateKeys.ts';
import { type FirnDeployment, NodeStatus } from './types.ts';
import { getVerifierSet } from './verifierSet/getVerifierSet.ts';
import { joinVerifierSet } from './verifierSet/joinVerifierSet.ts';
import { type RegistrationEvent, watchRegistrations } from './watchRegistrations.ts';

// Runs a real anvil and the real contracts. Covers deployment, the registration vote, a key
// rotation and revert decoding; the contracts' own edge cases are covered by the forge tests.
const ETH = 10n ** 18n;
const POLL = { pollingIntervalMs: 50 };
let anvil: AnvilInstance;
let deployment: FirnDeployment;
const clientsFor = (i: number): FirnClients =>
  createFirnClients(anvil.rpcUrl, anvil.accounts[i]!.privateKey, deployment, POLL);

describe('deployFirn and registry actions on anvil', () => {
  beforeAll(async () => {
    anvil = await startAnvil({ accounts: 8 });
    deployment = await deployFirn({
      rpcUrl: anvil.rpcUrl,
      deployerKey: anvil.accounts[0]!.privateKey,
      minNodeStake: ETH,
      minVerifierStake: ETH / 2n,
      verifierThreshold: 2,
      unbondingPeriod: 3600,
      challengeWindow: 600,
      slashAmount: ETH / 2n,
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
    expect(anvil.chainId).toBe(31337);
    expect(deployment.chainId).toBe(31337);
  });

  it('registers a node, collects approvals and activates it; decodes reverts', async () => {
    const gov = clientsFor(0);
    const operator = clientsFor(1);
    const measurement = keccak256(toHex('enclave-bundle-v1'));
    await allowMeasurement(gov, { teeType: 1, measurement });
    for (const i of [2, 3, 4]) await joinVerifierSet(clientsFor(i), ETH / 2n);
    const vs = await getVerifierSet(gov);
    expect(vs.threshold).toBe(2);
    expect(vs.verifiers).toHaveLength(3);

    const seen: RegistrationEvent[] = [];
    const watcher = watchRegistrations(gov, { pollIntervalMs: 50, onEvent: (e) => void seen.push(e) });

    const enclave = privateKeyToAccount(anvil.accounts[7]!.privateKey);
    const enclaveId = keccak256(toHex('enclave-1'));
    const evidenceDigest = keccak256(toHex('evidence-1'));
    const params = {
      enclaveId,
      teeType: 1,
      measurement,
      enclaveAddress: enclave.address,
      kemPublicKey: keccak256(toHex('kem-1')),
      endpoint: 'http://127.0.0.1:9000',
      evidenceDigest,
      stake: ETH,
    };

    // Stake below the minimum: the custom error and its arguments come back decoded.
    const low = await registerNode(operator, { ...params, stake: ETH - 1n }).catch((e: unknown) => e);
    expect(low).toBeInstanceOf(ChainRevertedError);
    expect((low as ChainRevertedError).code).toBe('E_CHAIN_REVERTED');
    expect((low as ChainRevertedError).errorName).toBe('StakeTooLow');
    expect((low as ChainRevertedError).args).toEqual([ETH - 1n, ETH]);
    expect((low as ChainRevertedError).message).toContain(`StakeTooLow(${ETH - 1n}, ${ETH})`);

    await registerNode(operator, params);
    expect((await getNode(gov, enclaveId)).status).toBe(NodeStatus.Pending);

    // A vote on different evidence is refused.
    const wrong = await approveNode(clientsFor(2), {
      enclaveId,
      evidenceDigest: keccak256(toHex('x')),
    }).catch((e: unknown) => e);
    expect((wrong as ChainRevertedError).errorName).toBe('EvidenceMismatch');

    await approveNode(clientsFor(2), { enclaveId, evidenceDigest });
    expect((await getNode(gov, enclaveId)).status).toBe(NodeStatus.Pending);
    await approveNode(clientsFor(3), { enclaveId, evidenceDigest });
    const node = await getNode(gov, enclaveId);
    expect(node.status).toBe(NodeStatus.Active);
    expect(node.enclaveAddress).toBe(enclave.address);
    expect(node.stake).toBe(ETH);
    expect(node.approvals).toBe(2);

    // Rotation refused by the quorum: old keys stay.
    const newAddr = privateKeyToAccount(anvil.accounts[6]!.privateKey).address;
    const rotDigest = keccak256(toHex('evidence-rot')) as Hex;
    await rotateKeys(operator, {
      enclaveId,
      newEnclaveAddress: newAddr,
      newKemPublicKey: keccak256(toHex('kem-2')),
      newEvidenceDigest: rotDigest,
    });
    await refuseNode(clientsFor(2), { enclaveId, evidenceDigest: rotDigest, reasonCode: 7 });
    await refuseNode(clientsFor(4), { enclaveId, evidenceDigest: rotDigest, reasonCode: 7 });
    const after = await getNode(gov, enclaveId);
    expect(after.status).toBe(NodeStatus.Active);
    expect(after.enclaveAddress).toBe(enclave.address);
    expect(after.rotationPending).toBe(false);

    const all = await listNodes(gov, { status: [NodeStatus.Active] });
    expect(all.map((n) => n.enclaveId)).toEqual([enclaveId]);

    for (let i = 0; i < 100 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    watcher.stop();
    expect(seen.map((e) => e.kind)).toEqual(['registered', 'keyRotation']);
    const first = seen[0]!;
    expect(first.kind === 'registered' && first.evidenceDigest).toBe(evidenceDigest);
    expect(seen[1]!.kind === 'keyRotation' && seen[1]!.newEvidenceDigest).toBe(rotDigest);
  });
});
