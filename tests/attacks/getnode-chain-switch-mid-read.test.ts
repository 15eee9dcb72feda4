import { createServer } from 'node:http';
import { keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AnvilInstance, startAnvil } from '../../packages/chain/src/anvil.ts';
import { createFirnClients } from '../../packages/chain/src/clients.ts';
import { getNode } from '../../packages/chain/src/registry/getNode.ts';
import { registerNode } from '../../packages/chain/src/registry/registerNode.ts';
import type { FirnDeployment } from '../../packages/chain/src/types.ts';
import { rpcCall } from '../../packages/chain/test/rpcProxy.ts';
import { deployTestFirn } from '../../packages/chain/test/testDeployment.ts';

// Promise (decision 1462, brief): a getNode read never returns values that are not on the chain at
// the block asked, also with another chain behind the same URL (a devnet restarted with the same
// deployer: same addresses, same Enclave ID). The index entry is checked by the hash of its block,
// but when it is made, the logs are read first and the hash of block `at` afterwards, in another
// request: if the URL's chain changes between the two (restart, a load balancer turning to another
// backend), the entry holds the OLD chain's values under the NEW chain's hash, and every later read
// through that URL serves them as the new chain's.

const ETH = 10n ** 18n;
const measurement = keccak256(toHex('getnode-switch-image'));
const enclaveId = keccak256(toHex('getnode-switch-enclave'));
let a: AnvilInstance;
let b: AnvilInstance;
let dA: FirnDeployment;
let dB: FirnDeployment;

async function register(anvil: AnvilInstance, deployment: FirnDeployment, endpoint: string): Promise<void> {
  const operator = createFirnClients(anvil.rpcUrl, anvil.accounts[1]!.privateKey, deployment, {
    pollingIntervalMs: 20,
  });
  await registerNode(operator, {
    enclaveId,
    teeType: 1,
    measurement,
    platformIdHash: keccak256(toHex('getnode-switch-machine')),
    enclaveAddress: privateKeyToAccount(anvil.accounts[2]!.privateKey).address,
    kemPublicKey: keccak256(toHex(endpoint)),
    endpoint,
    evidenceDigest: keccak256(toHex('evidence')),
    stake: ETH,
  });
}

beforeAll(async () => {
  a = await startAnvil({ accounts: 3 });
  b = await startAnvil({ accounts: 3 });
  dA = await deployTestFirn(a, { measurements: [{ teeType: 1, measurement }] });
  dB = await deployTestFirn(b, { measurements: [{ teeType: 1, measurement }] });
  await register(a, dA, 'http://127.0.0.1:9101');
  await register(b, dB, 'http://127.0.0.1:9202');
  await rpcCall(a.rpcUrl, 'anvil_mine', ['0xc8']);
  await rpcCall(b.rpcUrl, 'anvil_mine', ['0xd2']);
}, 90_000);
afterAll(async () => {
  await a?.stop();
  await b?.stop();
});

describe('getNode when the chain behind its URL changes in the middle of a read', () => {
  it('a later read through the URL gives the values on the chain it now serves', async () => {
    expect(dB.registry).toBe(dA.registry);
    let target = a.rpcUrl;
    let switchOnBlockRead = false;
    // A proxy whose backend is `target` at the time each request arrives.
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const m = JSON.parse(body) as { method?: string };
        // The chain changes just before the index reads the hash of its block.
        if (switchOnBlockRead && m.method === 'eth_getBlockByNumber') {
          target = b.rpcUrl;
          switchOnBlockRead = false;
        }
        fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
          .then(async (r) => {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(await r.text());
          })
          .catch(() => {
            res.writeHead(502);
            res.end();
          });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      switchOnBlockRead = true;
      // The read that makes the entry (its answer itself may mix the two chains: not asserted).
      await getNode(createFirnClients(url, undefined, dA), enclaveId).catch(() => undefined);
      expect(target).toBe(b.rpcUrl);
      // From now on the URL serves chain B only.
      const later = await getNode(createFirnClients(url, undefined, dB), enclaveId);
      const truth = await getNode(createFirnClients(b.rpcUrl, undefined, dB), enclaveId);
      expect(truth.endpoint).toBe('http://127.0.0.1:9202');
      expect(later.endpoint).toBe(truth.endpoint);
      expect(later.kemPublicKey).toBe(truth.kemPublicKey);
    } finally {
      server.close();
    }
  }, 60_000);
});
