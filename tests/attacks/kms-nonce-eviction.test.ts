import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateDer, DEV_POLICY } from '@firn/attestation';
import { bytesToHex, measurementDigest } from '@firn/core';
import { createSimulatedProvider, requestKmsSealingKey } from '@firn/enclave';
import { createLogger } from '@firn/node';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, describe, expect, it } from 'vitest';
import { KmsDaemon } from '../../packages/kms/src/kmsDaemon.ts';

// A stranger on the network against the key broker a TD takes its sealing key from.
//
// POST /v1/kms/nonce is unauthenticated and unthrottled; the broker keeps at most 10 000
// outstanding nonces and drops the OLDEST first (packages/kms/src/keyBroker.ts issueNonce). A TD
// asks for a nonce, quotes it (on hardware: tens of ms to seconds through the QGS), then sends its
// key request. A stranger who asks for 10 000 nonces in that window evicts the TD's nonce, and the
// broker refuses the TD (E_EVIDENCE_NONCE). Repeated, no TD behind this broker can get its sealing
// key: it cannot unseal its enclave keys after a restart, so the node cannot come back.
const sha = (s: string) => new Uint8Array(createHash('sha256').update(s).digest());
const CODE = sha('firn enclave build A');
const root = await createSimulatedRoot();
const kmsMachine = await createSimulatedPlatform(root);
const tdMachine = await createSimulatedPlatform(root);
const roots = { simulated: [certificateDer(root.certificatePem)] };
const policy = { ...DEV_POLICY, measurementAllowList: [bytesToHex(measurementDigest('simulated', [CODE]))] };
const dataDir = mkdtempSync(join(tmpdir(), 'firn-kms-evict-'));
const daemon = new KmsDaemon({
  dataDir,
  platform: kmsMachine,
  policy,
  roots,
  logger: createLogger({ component: 'kms' }, { write: () => {} }),
});
const info = await daemon.start();
afterAll(async () => {
  await daemon.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function strangerAsksForNonces(n: number): Promise<void> {
  const one = () =>
    fetch(new URL('/v1/kms/nonce', info.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    }).then((r) => r.arrayBuffer());
  // 200 at a time.
  for (let i = 0; i < n; i += 200) await Promise.all(Array.from({ length: Math.min(200, n - i) }, one));
}

describe('a stranger evicts a TD nonce from the key broker', () => {
  it('the TD still gets its sealing key when strangers ask for many nonces meanwhile', async () => {
    const provider = createSimulatedProvider(tdMachine, CODE);
    // Sanity: without the stranger the TD gets its key.
    await expect(
      requestKmsSealingKey({ url: info.url, brokerAddress: info.address, provider }),
    ).resolves.toHaveLength(32);

    // The TD's traffic, with the stranger's burst between its nonce and its key request (the time
    // a real quote takes).
    let flooded = false;
    const tdFetch: typeof fetch = async (input, init) => {
      const url = String(input);
      if (url.endsWith('/v1/kms/key') && !flooded) {
        flooded = true;
        await strangerAsksForNonces(10_000);
      }
      return fetch(input, init);
    };
    let outcome: unknown;
    try {
      outcome = await requestKmsSealingKey({
        url: info.url,
        brokerAddress: info.address,
        provider,
        fetch: tdFetch,
        // The TD waits as long as the burst takes (a quote on hardware may take as long).
        timeoutMs: 120_000,
      });
    } catch (e) {
      outcome = e;
    }
    expect(flooded).toBe(true);
    // What happens now: the broker has forgotten the TD's nonce.
    if (!(outcome instanceof Uint8Array)) expect(outcome).toMatchObject({ code: 'E_EVIDENCE_NONCE' });
    // Safe outcome: a nonce handed to one caller is not taken away by other callers' requests.
    expect(outcome).toBeInstanceOf(Uint8Array);
  }, 120_000);
});
