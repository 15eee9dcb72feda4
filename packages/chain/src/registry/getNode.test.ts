import { type Hex, keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordingRpcProxy, rewritingRpcProxy, rpcCall } from '../../test/rpcProxy.ts';
import { deployTestFirn } from '../../test/testDeployment.ts';
import { type AnvilInstance, startAnvil } from '../anvil.ts';
import { createFirnClients } from '../clients.ts';
import type { FirnDeployment } from '../types.ts';
import { getNode, PUBLISHED_INDEX_CONFIRMATIONS } from './getNode.ts';
import { registerNode } from './registerNode.ts';
import { updateEndpoint } from './updateEndpoint.ts';

// getNode reads a node's KEM key and endpoint from its events, back to its registration: a cost
// that grew with the chain (about 1 ms of anvil's time per 1,000 blocks since the node registered,
// at every read). A process now remembers what it read (per RPC endpoint) and asks only for the
// blocks after it. What must hold: the values stay right (an update after the first read is seen,
// an older block still reads the older values) and one endpoint's answers never stand in for
// another's (a lying RPC neither poisons nor borrows the honest one's index).

const ETH = 10n ** 18n;
const measurement = keccak256(toHex('getNode-index-image'));
const enclaveId = keccak256(toHex('getNode-index-enclave'));
let anvil: AnvilInstance;
let deployment: FirnDeployment;
let proxy: Awaited<ReturnType<typeof recordingRpcProxy>>;

/** The blocks the eth_getLogs calls in `calls` covered, in all. */
function blocksScanned(calls: { method: string; params: unknown[] }[]): bigint {
  let n = 0n;
  for (const c of calls) {
    if (c.method !== 'eth_getLogs') continue;
    const f = c.params[0] as { fromBlock: Hex; toBlock: Hex };
    n += BigInt(f.toBlock) - BigInt(f.fromBlock) + 1n;
  }
  return n;
}

const mine = (blocks: number) => rpcCall(anvil.rpcUrl, 'anvil_mine', [`0x${blocks.toString(16)}`]);

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 3 });
  deployment = await deployTestFirn(anvil, { measurements: [{ teeType: 1, measurement }] });
  proxy = await recordingRpcProxy(anvil.rpcUrl);
  await register('http://127.0.0.1:9001', keccak256(toHex('kem')));
}, 60_000);

/** Register the test's Enclave ID on `deployment` with this endpoint and KEM key. */
async function register(endpoint: string, kemPublicKey: Hex): Promise<void> {
  const operator = createFirnClients(anvil.rpcUrl, anvil.accounts[1]!.privateKey, deployment, {
    pollingIntervalMs: 20,
  });
  await registerNode(operator, {
    enclaveId,
    teeType: 1,
    measurement,
    platformIdHash: keccak256(toHex('getNode-index-machine')),
    enclaveAddress: privateKeyToAccount(anvil.accounts[2]!.privateKey).address,
    kemPublicKey,
    endpoint,
    evidenceDigest: keccak256(toHex('evidence')),
    stake: ETH,
  });
}

afterAll(async () => {
  proxy?.server.close();
  await anvil?.stop();
});

describe('getNode reads the blocks since its last read, not since the registration', () => {
  it('scans the chain back to the registration once, then only the new blocks; updates are seen, old blocks read old values', async () => {
    await mine(400);
    // A fresh client per read, as every job's requester makes: the index is per process and endpoint.
    const read = (blockNumber?: bigint) =>
      getNode(
        createFirnClients(proxy.url, undefined, deployment),
        enclaveId,
        blockNumber === undefined ? {} : { blockNumber },
      );
    proxy.calls.length = 0;
    const first = await read();
    expect(first.endpoint).toBe('http://127.0.0.1:9001');
    expect(first.kemPublicKey).toBe(keccak256(toHex('kem')));
    expect(blocksScanned(proxy.calls)).toBeGreaterThanOrEqual(400n);

    const operator = createFirnClients(anvil.rpcUrl, anvil.accounts[1]!.privateKey, deployment, {
      pollingIntervalMs: 20,
    });
    const before = await operator.public.getBlockNumber();
    await updateEndpoint(operator, enclaveId, 'http://127.0.0.1:9002');
    await mine(150);

    proxy.calls.length = 0;
    const second = await read();
    expect(second.endpoint).toBe('http://127.0.0.1:9002');
    expect(second.kemPublicKey).toBe(first.kemPublicKey);
    // The blocks since the first read (152 or so) and the unconfirmed tail of the first read.
    const scanned = blocksScanned(proxy.calls);
    expect(scanned).toBeGreaterThan(150n);
    expect(scanned).toBeLessThanOrEqual(160n + PUBLISHED_INDEX_CONFIRMATIONS);

    proxy.calls.length = 0;
    const third = await read();
    expect(third.endpoint).toBe('http://127.0.0.1:9002');
    expect(blocksScanned(proxy.calls)).toBeLessThanOrEqual(PUBLISHED_INDEX_CONFIRMATIONS + 1n);

    // A read as of a block before the update still gives the endpoint in force then.
    expect((await read(before)).endpoint).toBe('http://127.0.0.1:9001');
    expect((await read()).endpoint).toBe('http://127.0.0.1:9002');
  }, 60_000);

  it('keeps endpoints apart: a lying RPC that hides the logs neither borrows nor poisons the honest one’s index', async () => {
    const liar = await rewritingRpcProxy(anvil.rpcUrl, (m) =>
      m.method === 'eth_getLogs' ? { jsonrpc: '2.0', id: m.id, result: [] } : undefined,
    );
    try {
      const honest = () => getNode(createFirnClients(proxy.url, undefined, deployment), enclaveId);
      expect((await honest()).endpoint).toBe('http://127.0.0.1:9002');
      const lied = await getNode(createFirnClients(liar.url, undefined, deployment), enclaveId);
      // The liar's own answer (what AgreeingChainView compares against the honest one).
      expect(lied.endpoint).toBe('');
      expect((await honest()).endpoint).toBe('http://127.0.0.1:9002');
    } finally {
      liar.server.close();
    }
  }, 60_000);

  it('neither stores nor uses an entry when the RPC answers another chain id than the deployment’s', async () => {
    // The deployment says chain id 1; the URL serves anvil's. Every read scans back to the
    // registration (nothing was stored), and the values are still the chain's.
    const wrong = { ...deployment, chainId: 1 };
    const read = () => getNode(createFirnClients(proxy.url, undefined, wrong), enclaveId);
    expect((await read()).endpoint).toBe('http://127.0.0.1:9002');
    await mine(100);
    proxy.calls.length = 0;
    expect((await read()).endpoint).toBe('http://127.0.0.1:9002');
    expect(blocksScanned(proxy.calls)).toBeGreaterThan(400n);
  }, 60_000);

  it('does not carry an entry over to another chain behind the same URL (a devnet restarted: same addresses, same Enclave ID)', async () => {
    const read = () => getNode(createFirnClients(proxy.url, undefined, deployment), enclaveId);
    expect((await read()).endpoint).toBe('http://127.0.0.1:9002');
    const head = await createFirnClients(proxy.url, undefined, deployment).public.getBlockNumber();
    await rpcCall(anvil.rpcUrl, 'anvil_reset', []);
    const again = await deployTestFirn(anvil, { measurements: [{ teeType: 1, measurement }] });
    expect(again.registry).toBe(deployment.registry);
    await register('http://127.0.0.1:9003', keccak256(toHex('kem-2')));
    // Past the entry's block, so the index would be consulted.
    const now = await createFirnClients(proxy.url, undefined, deployment).public.getBlockNumber();
    await mine(Number(head - now) + 10);
    const fresh = await read();
    expect(fresh.endpoint).toBe('http://127.0.0.1:9003');
    expect(fresh.kemPublicKey).toBe(keccak256(toHex('kem-2')));
  }, 60_000);
});
