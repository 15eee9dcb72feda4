import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateDer, DEV_POLICY } from '@firn/attestation';
import { bytesToHex, measurementDigest } from '@firn/core';
import { createEnclaveProgram, unsealKeys } from '@firn/enclave';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, describe, expect, it } from 'vitest';
import { environmentFromEnv } from '../../packages/enclave/src/evidence/environmentFromEnv.ts';
import { KeyBroker } from '../../packages/kms/src/keyBroker.ts';

// A malicious host against a broker-sealed enclave (TDX / SEV-SNP / Nitro; here the simulated TEE,
// whose quotes carry the same debug flag and whose key comes from the same broker code path).
//
// The host launches the SAME measured image a second time as a DEBUG enclave (FIRN_SIM_DEBUG=1,
// an allow-listed host variable; on TDX the TD's ATTRIBUTES.DEBUG bit, which the host sets when it
// creates the TD and which is not part of MRTD/RTMRs). A debug TEE's memory is readable by the host.
// The broker derives the sealing key from (teeType, measurement, platformId) only
// (keyBroker.ts deriveKmsSealingKey): the debug flag is not an input. So wherever a broker policy
// lets a debug quote through (allowDebug: a bring-up / staging policy file, `--policy FILE`), the
// debug instance is released the production instance's sealing key, and the host reads it from
// the debug instance's memory and opens the production enclave's sealed signing and KEM keys.
// SGX derives its sealing keys with ATTRIBUTES (DEBUG) in the key request for exactly this reason;
// the safe outcome is: a debug enclave never obtains the non-debug enclave's key.
const sha = (s: string) => new Uint8Array(createHash('sha256').update(s).digest());
const CODE = sha('firn enclave image pinned to the broker');
const root = await createSimulatedRoot();
const machine = await createSimulatedPlatform(root);
const measurement = measurementDigest('simulated', [CODE]);
const dir = mkdtempSync(join(tmpdir(), 'firn-kms-debug-'));
const platformFile = join(dir, 'td.json');
writeFileSync(platformFile, JSON.stringify(machine));

// The genuine broker (its own master, which the host never sees), with a policy that admits debug
// quotes for this measurement (e.g. during bring-up); everything else as the devnet's dev policy.
const broker = new KeyBroker({
  masterSecret: sha('broker master secret the host does not know'),
  policy: { ...DEV_POLICY, allowDebug: true, measurementAllowList: [bytesToHex(measurement)] },
  roots: { simulated: [certificateDer(root.certificatePem)] },
});
const server = createServer(async (req, res) => {
  let body = '';
  for await (const c of req) body += c;
  try {
    const out =
      req.url === '/v1/kms/nonce' ? broker.issueNonce() : (await broker.release(JSON.parse(body))).response;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
  } catch (e) {
    res
      .writeHead(400)
      .end(JSON.stringify({ error: { code: (e as { code?: string }).code, message: String(e) } }));
  }
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('a debug instance of a broker-sealed enclave', () => {
  it('is never released the sealing key of the production instance', async () => {
    const env = (debug: boolean) =>
      environmentFromEnv(
        {
          FIRN_TEE: 'simulated',
          FIRN_SIM_PLATFORM: platformFile,
          FIRN_KMS_URL: url,
          ...(debug ? { FIRN_SIM_DEBUG: '1' } : {}),
        },
        CODE,
        { keyBroker: { address: broker.address } },
      );
    // The production enclave starts and seals its keys under the broker's key.
    const prod = await createEnclaveProgram(await env(false)).handle('init', {});
    const { sealedKeys, kemPublicKey } = prod as { sealedKeys: unknown; kemPublicKey: string };

    // The host starts the same image as a debug instance and reads the key it is released (in
    // hardware: from the debug TEE's memory; here: the same call the enclave makes).
    const debugEnv = await env(true);
    let leaked: Uint8Array | undefined;
    try {
      leaked = await debugEnv.provider.sealingKey();
    } catch {
      leaked = undefined;
    }
    let opened: string | undefined;
    if (leaked !== undefined)
      try {
        opened = bytesToHex(unsealKeys(sealedKeys, leaked, measurement).kemPublicKey);
      } catch {
        opened = undefined;
      }
    // What happens now: the production enclave's KEM private key opens with the debug instance's key.
    if (opened !== undefined) expect(opened).toBe(kemPublicKey);
    // Safe outcome: the debug instance's key (if any) does not open the production sealed keys.
    expect(opened).toBeUndefined();
  }, 60_000);
});
