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

/**
 * A proxy in front of chain A whose backend becomes chain B when `when(method, seen)` says so
 * (`seen`: the methods forwarded so far), before that request is forwarded; from then on every
 * request goes to B. `switched()` tells whether it happened.
 */
async function switchingProxy(
  when: (method: string | undefined, seen: readonly string[]) => boolean,
): Promise<{ url: string; switched: () => boolean; seen: string[]; close: () => void }> {
  let target = a.rpcUrl;
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const m = JSON.parse(body) as { method?: string };
      if (target === a.rpcUrl && when(m.method, seen)) target = b.rpcUrl;
      seen.push(m.method ?? '?');
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
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    switched: () => target === b.rpcUrl,
    seen,
    close: () => server.close(),
  };
}

/** What getNode gives through `url` now, and what chain B holds (read straight from B). */
async function laterAndTruth(url: string) {
  const later = await getNode(createFirnClients(url, undefined, dB), enclaveId);
  const truth = await getNode(createFirnClients(b.rpcUrl, undefined, dB), enclaveId);
  expect(truth.endpoint).toBe('http://127.0.0.1:9202');
  return { later, truth };
}

describe('getNode when the chain behind its URL changes in the middle of a read', () => {
  it('a later read through the URL gives the values on the chain it now serves (switch after the logs, at the block hash read)', async () => {
    expect(dB.registry).toBe(dA.registry);
    // The chain changes just before the index reads a block's hash after it read the logs (where
    // the entry's hash used to be read, after its values).
    const p = await switchingProxy(
      (method, seen) => method === 'eth_getBlockByNumber' && seen.includes('eth_getLogs'),
    );
    try {
      // The read that makes the entry (its answer itself may mix the two chains: not asserted).
      await getNode(createFirnClients(p.url, undefined, dA), enclaveId).catch(() => undefined);
      expect(p.switched()).toBe(true);
      // From now on the URL serves chain B only.
      const { later, truth } = await laterAndTruth(p.url);
      expect(later.endpoint).toBe(truth.endpoint);
      expect(later.kemPublicKey).toBe(truth.kemPublicKey);
    } finally {
      p.close();
    }
  }, 60_000);

  it('whichever request of the read the chain changes at, making the entry or using one, later reads give the new chain’s values', async () => {
    // Each case gets its own proxy (its own URL: a fresh index key). `warm`: an entry was made on
    // chain A through the URL first, and the switch comes in the read that uses it.
    let cases = 0;
    for (const warm of [false, true]) {
      for (let k = 0; ; k++) {
        let reads = 0;
        let armed = !warm;
        const p = await switchingProxy(() => armed && reads++ === k);
        try {
          if (warm) {
            expect((await getNode(createFirnClients(p.url, undefined, dA), enclaveId)).endpoint).toBe(
              'http://127.0.0.1:9101',
            );
            armed = true;
          }
          await getNode(createFirnClients(p.url, undefined, dA), enclaveId).catch(() => undefined);
          // Past the read's last request: every switch point has been tried.
          if (!p.switched()) break;
          cases++;
          const { later, truth } = await laterAndTruth(p.url);
          expect({ warm, k, endpoint: later.endpoint }).toEqual({ warm, k, endpoint: truth.endpoint });
          expect(later.kemPublicKey).toBe(truth.kemPublicKey);
        } finally {
          p.close();
        }
      }
    }
    // Both reads make several requests (block, chain id, hashes, logs, block again).
    expect(cases).toBeGreaterThanOrEqual(8);
  }, 60_000);
});
