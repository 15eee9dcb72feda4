import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { appraiseEvidence, certificateDer, DEV_POLICY } from '@firn/attestation';
import { createSimulatedPlatform, type SimulatedRoot } from '@firn/sim';
import { bytesToHex, FirnError, type Hex, measurementDigest } from '@firn/core';
import { brokerCodeSha256 } from '@firn/kms';

export interface DevnetKms {
  url: string;
  /** The broker identity an enclave image pins (--key-broker; decision 1710). */
  address: Hex;
  child: ChildProcess;
}

/**
 * Start the devnet's key broker (`firn kms start`) on its own simulated machine, releasing keys
 * only to `measurement` (dev policy, the devnet's simulated root pinned) and, with
 * `deploymentFile`, only while the registry allow-lists it (so `firn gov revoke-measurement`
 * stops release), wait for its kms.json, and attest it (fresh nonce, the broker code's
 * measurement) before its address is handed on. A second start in the same `dir` unseals the same
 * master secret: same address. Enclaves whose image pins that address (decision 1710) take their
 * sealing key from it. Errors: E_UNAVAILABLE (it exited), E_TIMEOUT, E_POLICY_REJECTED (it failed
 * its own attestation).
 */
export async function startDevnetKms(o: {
  dir: string;
  root: SimulatedRoot;
  rootFile: string;
  measurement: Hex;
  /** The devnet's deployment file: the broker also requires the registry's allow-list. */
  deploymentFile?: string;
  spawnFirn: (args: string[], logFile: string) => ChildProcess;
  timeoutMs?: number;
}): Promise<DevnetKms> {
  const platformFile = join(o.dir, 'platforms', 'kms.json');
  // A restart keeps the broker's machine: its sealing key opens the master secret sealed before.
  if (!existsSync(platformFile))
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
      ...(o.deploymentFile ? ['--deployment', o.deploymentFile] : []),
    ],
    join(o.dir, 'logs', 'kms.log'),
  );
  const infoFile = join(dataDir, 'kms.json');
  // A restart writes kms.json afresh once it listens (its port changes).
  rmSync(infoFile, { force: true });
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

/** Stop a devnet broker: SIGTERM, then SIGKILL after `graceMs` (default 5 s); resolves once it exited. */
export async function stopDevnetKms(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
