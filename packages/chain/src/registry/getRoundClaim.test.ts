import { type Hex, keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rewritingRpcProxy } from '../../test/rpcProxy.ts';
import { deployTestFirn } from '../../test/testDeployment.ts';
import { type AnvilInstance, startAnvil } from '../anvil.ts';
import type { ChainRevertedError } from '../ChainRevertedError.ts';
import { createFirnClients, type FirnClients } from '../clients.ts';
import type { FirnDeployment } from '../types.ts';
import { joinVerifierSet } from '../verifierSet/joinVerifierSet.ts';
import { approveNode } from './approveNode.ts';
import { getRoundClaim } from './getRoundClaim.ts';
import { registerNode } from './registerNode.ts';
import { requestExit } from './requestExit.ts';
import { rotateKeys } from './rotateKeys.ts';

// What a verifier judges is the claim of one round, read at one block (decision 1831): the record
// and the KEM key of that very round's event, never a KEM key published in another round beside
// this round's enclave address.

const ETH = 10n ** 18n;
const measurement = keccak256(toHex('round-claim-image'));
const enclaveId = keccak256(toHex('round-claim-enclave'));
let anvil: AnvilInstance;
let deployment: FirnDeployment;
let operator: FirnClients;
let verifier: FirnClients;

const addressOf = (i: number) => privateKeyToAccount(anvil.accounts[i]!.privateKey).address;
const head = () => operator.public.getBlockNumber({ cacheTime: 0 });

function register(enclaveAddress: Hex, kem: string) {
  return registerNode(operator, {
    enclaveId,
    teeType: 1,
    measurement,
    platformIdHash: keccak256(toHex('round-claim-machine')),
    enclaveAddress,
    kemPublicKey: keccak256(toHex(kem)),
    endpoint: 'http://127.0.0.1:9001',
    evidenceDigest: keccak256(toHex('digest')),
    stake: ETH,
  });
}

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 6 });
  deployment = await deployTestFirn(anvil, {
    measurements: [{ teeType: 1, measurement }],
    verifiers: [addressOf(2)],
  });
  const at = (i: number) =>
    createFirnClients(anvil.rpcUrl, anvil.accounts[i]!.privateKey, deployment, { pollingIntervalMs: 20 });
  operator = at(1);
  verifier = at(2);
  await joinVerifierSet(verifier, ETH);
}, 60_000);

afterAll(async () => {
  await anvil?.stop();
});

describe('getRoundClaim', () => {
  it('reads one round at one block: a re-registration is another round with its own keys', async () => {
    await register(addressOf(3), 'kem-1');
    const first = await getRoundClaim(operator, enclaveId);
    expect(first).toMatchObject({
      kind: 'registered',
      round: 1,
      enclaveAddress: addressOf(3),
      kemPublicKey: keccak256(toHex('kem-1')),
      evidenceDigest: keccak256(toHex('digest')),
      endpoint: 'http://127.0.0.1:9001',
    });
    const readAt = first!.blockNumber;

    await requestExit(operator, enclaveId);
    expect(await getRoundClaim(operator, enclaveId)).toBeUndefined();
    await register(addressOf(4), 'kem-2');
    expect(await getRoundClaim(operator, enclaveId)).toMatchObject({
      round: 2,
      enclaveAddress: addressOf(4),
      kemPublicKey: keccak256(toHex('kem-2')),
    });
    // Pinned to the first read's block, it is still round 1 with round 1's keys.
    expect(await getRoundClaim(operator, enclaveId, { blockNumber: readAt })).toEqual(first);

    // An RPC whose log index stops before round 2's NodeRegistered, while its state has round 2:
    // the claim is unreadable, not round 2's address beside round 1's KEM key.
    const stale = await rewritingRpcProxy(anvil.rpcUrl, (m) => {
      const f = m.params?.[0] as { toBlock?: string } | undefined;
      if (m.method !== 'eth_getLogs' || f === undefined) return undefined;
      if (f.toBlock?.startsWith('0x') && BigInt(f.toBlock) > readAt) f.toBlock = `0x${readAt.toString(16)}`;
      return undefined;
    });
    try {
      const lagging = createFirnClients(stale.url, undefined, deployment);
      const e = await getRoundClaim(lagging, enclaveId).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'E_CHAIN' });
      expect((e as Error).message).toMatch(/round 2 .* round 1's keys/);
    } finally {
      stale.server.close();
    }

    // A vote names the round: round 1's is refused, round 2's counts.
    const old = await approveNode(verifier, {
      enclaveId,
      round: 1,
      evidenceDigest: first!.evidenceDigest,
    }).catch((x: unknown) => x);
    expect((old as ChainRevertedError).errorName).toBe('RoundMismatch');
    await approveNode(verifier, { enclaveId, round: 2, evidenceDigest: first!.evidenceDigest });
    expect(await getRoundClaim(operator, enclaveId)).toBeUndefined();
  }, 60_000);

  it('a key rotation round claims the pending keys', async () => {
    const before = await head();
    await rotateKeys(operator, {
      enclaveId,
      newEnclaveAddress: addressOf(5),
      newKemPublicKey: keccak256(toHex('kem-3')),
      newEvidenceDigest: keccak256(toHex('digest-3')),
    });
    expect(await getRoundClaim(operator, enclaveId)).toMatchObject({
      kind: 'keyRotation',
      round: 3,
      enclaveAddress: addressOf(5),
      kemPublicKey: keccak256(toHex('kem-3')),
      evidenceDigest: keccak256(toHex('digest-3')),
    });
    expect(await getRoundClaim(operator, enclaveId, { blockNumber: before })).toBeUndefined();
  }, 60_000);
});
