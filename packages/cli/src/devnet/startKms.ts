import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSimulatedPlatform, type SimulatedRoot } from '@firn/attestation';
import { FirnError, type Hex } from '@firn/core';

export interface DevnetKms {
  url: string;
  /** The broker identity nodes pin (--kms-address). */
  address: Hex;
  child: ChildProcess;
}

/**
 * Start the devnet's key broker (`firn kms start`) on its own simulated machine, releasing keys
 * only to the devnet's enclave measurement (dev policy, the devnet's simulated root pinned), and
 * wait for its kms.json. Nodes started with --kms-url/--kms-address take their sealing key from it.
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
  return { url: info.url, address: info.address, child };
}
