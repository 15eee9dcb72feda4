import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { appraiseEvidence, certificateDer, DEV_POLICY } from '@firn/attestation';
import { createSimulatedPlatform, type SimulatedRoot } from '@firn/sim';
import { bytesToHex, FirnError, type Hex, measurementDigest } from '@firn/core';
import { brokerCodeSha256 } from '@firn/kms';

export interface DevnetKms {
  url: string;
  /** The broker identity nodes pin (--kms-address). */
  address: Hex;
  child: ChildProcess;
}

/**
 * Start the devnet's key broker (`firn kms start`) on its own simulated machine, releasing keys
 * only to the devnet's enclave measurement (dev policy, the devnet's simulated root pinned), wait
 * for its kms.json, and attest it (fresh nonce, the broker code's measurement) before its address
 * is handed to nodes. Nodes started with --kms-url/--kms-address take their sealing key from it.
 */
export async function startDevnetKms(o: {
  dir: string;
  root: SimulatedRoot;
  rootFile: string;
  measurement: Hex;
  spawnFirn: (args: string[], logFile: string) => ChildProcess;
  timeoutMs?: number;
}): Promise<DevnetKms> {
  const platformFile = join(o.dir, 'platforms', 'kms.json');
  writeFileSync(platformFile, JSON.stringify(await createSimulatedPlatform(o.root)), { mode: 0o600 });
  const dataDir = join(o.dir, 'kms');
  const child = o.spawnFirn(
    [
      'kms',
      'start',
      '--data-dir',
      dataDir,
      '--sim-platform',
      platformFile,
      '--sim-root',
      o.rootFile,
      '--policy',
      'dev',
      '--allow-measurement',
      o.measurement,
    ],
    join(o.dir, 'logs', 'kms.log'),
  );
  const infoFile = join(dataDir, 'kms.json');
  const until = Date.now() + (o.timeoutMs ?? 60_000);
  while (!existsSync(infoFile)) {
    if (child.exitCode !== null)
      throw new FirnError('E_UNAVAILABLE', `key broker exited (see ${join(o.dir, 'logs', 'kms.log')})`);
    if (Date.now() > until) throw new FirnError('E_TIMEOUT', 'key broker did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const info = JSON.parse(readFileSync(infoFile, 'utf8')) as { url: string; address: Hex };
  const nonce = new Uint8Array(randomBytes(32));
  const res = await fetch(`${info.url}/v1/kms/attestation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ nonce: bytesToHex(nonce) }),
  });
  const appraisal = await appraiseEvidence(await res.json(), {
    now: Math.floor(Date.now() / 1000),
    policy: {
      ...DEV_POLICY,
      measurementAllowList: [bytesToHex(measurementDigest('simulated', [brokerCodeSha256()]))],
    },
    expectedNonce: nonce,
    roots: { simulated: [certificateDer(o.root.certificatePem)] },
  });
  if (!appraisal.ok || appraisal.bundle.enclaveAddress.toLowerCase() !== info.address.toLowerCase())
    throw new FirnError('E_POLICY_REJECTED', 'the key broker failed its own attestation');
  return { url: info.url, address: info.address, child };
}
