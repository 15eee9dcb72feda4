import { join, resolve } from 'node:path';
import type { Hex } from '@firn/core';
import { buildAppImage } from '@firn/node';

/**
 * Developer apps hosted on the devnet (`firn devnet --app DIR`, repeatable; issue 12). Each app is
 * built into its own enclave image, its measurement is allow-listed at deployment (the devnet's
 * governance bootstrap; on a real network `firn app publish` does it through the timelock), and
 * one node process on its own simulated machine runs that image: its own enclave, Enclave ID and
 * registration, approved by the verifiers like any node.
 */
export interface DevnetApp {
  /** The app folder, absolute. */
  dir: string;
  name: string;
  version: string;
  measurement: Hex;
  /** The image entry the node runs (`--bundle`). */
  entry: string;
  workloads: string[];
}

/** Build every app folder's image under `outRoot/<n>-<name>`; E_* from buildAppImage name the folder. */
export async function buildDevnetApps(
  dirs: readonly string[],
  outRoot: string,
  log: (line: string) => void,
): Promise<DevnetApp[]> {
  const apps: DevnetApp[] = [];
  for (const [i, d] of dirs.entries()) {
    const dir = resolve(d);
    const built = await buildAppImage({ appDir: dir, outDir: join(outRoot, `app-${i + 1}`) });
    apps.push({
      dir,
      name: built.app.name,
      version: built.app.version,
      measurement: built.measurement,
      entry: built.image.entry,
      workloads: built.app.workloads,
    });
    log(`app ${built.app.name} ${built.app.version} (${dir}): measurement ${built.measurement}`);
  }
  return apps;
}
