import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateDer, DEV_POLICY } from '@firn/attestation';
import { bytesToHex, hexBytes, measurementDigest } from '@firn/core';
import { createEnclaveProgram, unsealKeys } from '@firn/enclave';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, describe, expect, it } from 'vitest';
import { environmentFromEnv } from '../../packages/enclave/src/evidence/environmentFromEnv.ts';
import { deriveKmsSealingKey, KeyBroker } from '../../packages/kms/src/keyBroker.ts';

// A malicious host against every secret granted to a key-broker-sealed enclave (TDX, Nitro,
// SEV-SNP: no hardware sealing key, the broker is the only source).
//
// The broker the enclave trusts is pinned by FIRN_KMS_ADDRESS, an environment variable the host's
// node process sets (packages/cli/src/commands/node.ts --kms-address, enclaveSupervisor's
// allow-listed env). It is not part of the measurement (environmentFromEnv.ts: the measurement is
// the image / the quote's registers only). So the host runs its OWN broker (its own master secret,
// the TD's measurement on its allow-list), names it in FIRN_KMS_URL / FIRN_KMS_ADDRESS, and the
// enclave, same measurement, same Enclave ID, same evidence for verifiers and data owners, takes
// its sealing key from the host's broker and seals its signing and KEM private keys under a key
// the host derives itself. The host opens sealedKeys: every grant and request for this enclave is
// readable. (On the simulated TEE this program runs here; the TDX/Nitro/SEV-SNP branches of
// environmentFromEnv use the same unmeasured env pin.)
const sha = (s: string) => new Uint8Array(createHash('sha256').update(s).digest());
const CODE = sha('firn enclave image A');
const root = await createSimulatedRoot();
const tdMachine = await createSimulatedPlatform(root);
const roots = { simulated: [certificateDer(root.certificatePem)] };
const measurement = measurementDigest('simulated', [CODE]);
const dir = mkdtempSync(join(tmpdir(), 'firn-kms-pin-'));
const platformFile = join(dir, 'td.json');
writeFileSync(platformFile, JSON.stringify(tdMachine));

// The host's own broker: an ordinary KeyBroker whose master secret the host chose.
const hostMaster = sha('the host knows this master secret');
const impostor = new KeyBroker({
  masterSecret: hostMaster,
  policy: { ...DEV_POLICY, measurementAllowList: [bytesToHex(measurement)] },
  roots,
});
const server = createServer(async (req, res) => {
  let body = '';
  for await (const c of req) body += c;
  try {
    const out =
      req.url === '/v1/kms/nonce'
        ? impostor.issueNonce()
        : (await impostor.release(JSON.parse(body))).response;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
  } catch (e) {
    res.writeHead(400).end(JSON.stringify({ error: { code: (e as { code?: string }).code, message: 'no' } }));
  }
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const impostorUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('the host names the key broker its enclave takes its sealing key from', () => {
  it('an enclave does not seal its keys under a key from a broker the host picked', async () => {
    const genuineAddress = `0x${'11'.repeat(20)}`;
    const honestEnv = await environmentFromEnv(
      {
        FIRN_TEE: 'simulated',
        FIRN_SIM_PLATFORM: platformFile,
        FIRN_KMS_URL: 'http://kms.example:7400',
        FIRN_KMS_ADDRESS: genuineAddress,
      },
      CODE,
    );
    const hostEnv = await environmentFromEnv(
      {
        FIRN_TEE: 'simulated',
        FIRN_SIM_PLATFORM: platformFile,
        FIRN_KMS_URL: impostorUrl,
        FIRN_KMS_ADDRESS: impostor.address,
      },
      CODE,
    );
    // The same identity either way: verifiers, the registry and data owners cannot tell.
    expect(hostEnv.measurementRegisters).toEqual(honestEnv.measurementRegisters);
    expect(hostEnv.platformId).toEqual(honestEnv.platformId);

    const program = createEnclaveProgram(hostEnv);
    let outcome: unknown;
    try {
      outcome = await program.handle('init', {});
    } catch (e) {
      outcome = e;
    }
    const init = outcome as { sealedKeys?: unknown; kemPublicKey?: string };
    let stolen: string | undefined;
    if (init.sealedKeys !== undefined) {
      // The host derives the sealing key with its own master and opens the sealed key blob.
      const key = deriveKmsSealingKey(
        hostMaster,
        'simulated',
        measurement,
        hexBytes(bytesToHex(hostEnv.platformId), 'platformId'),
      );
      try {
        stolen = bytesToHex(unsealKeys(init.sealedKeys, key, measurement).kemPublicKey);
      } catch {
        stolen = undefined;
      }
    }
    // What happens now: the host holds the enclave's KEM private key (its public half matches).
    if (stolen !== undefined) expect(stolen).toBe(init.kemPublicKey);
    // Safe outcome: the host cannot open the enclave's sealed keys.
    expect(stolen).toBeUndefined();
  }, 60_000);
});
