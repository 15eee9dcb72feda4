import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { InvalidInputError, repoRoot } from '@firn/core';
import { buildAppImage } from '@firn/node';

/**
 * `firn node start --app DIR` (issue 12): a node hosts a developer app by running that app's
 * enclave image. The image is built from the folder into DATA_DIR/app-image (reproducibly: its
 * measurement is the one `firn app build` prints anywhere), and the node registers that
 * measurement, so the app has its own enclave, Enclave ID and registration. Returns the entry.
 */
export async function appBundle(appDir: string, dataDir: string): Promise<string> {
  const built = await buildAppImage({ appDir: resolve(appDir), outDir: join(resolve(dataDir), 'app-image') });
  return built.image.entry;
}

/**
 * With several `--app`, one node process per app: the same arguments, each with one `--app`, its
 * own data directory (DATA_DIR/app-N) and its own port (PORT+N-1, or any free port with 0). Each
 * needs its own simulated machine or TEE and registration; the operator key and stake are shared.
 */
export function appNodeArgs(
  argv: readonly string[],
  apps: readonly string[],
  o: { dataDir: string; port: string; endpoint?: string },
): string[][] {
  if (o.endpoint !== undefined)
    throw new InvalidInputError(
      '--endpoint names one node: with several --app, leave it out (each gets host:port)',
    );
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--app' || a === '--data-dir' || a === '--port') {
      i++;
      continue;
    }
    if (a.startsWith('--app=') || a.startsWith('--data-dir=') || a.startsWith('--port=')) continue;
    rest.push(a);
  }
  const base = Number(o.port);
  return apps.map((app, i) => [
    ...rest,
    '--app',
    app,
    '--data-dir',
    join(o.dataDir, `app-${i + 1}`),
    '--port',
    String(base === 0 ? 0 : base + i),
  ]);
}

/** Spawn the node processes of `appNodeArgs` (output inherited). */
export function spawnAppNodes(
  argv: readonly string[],
  apps: readonly string[],
  o: { dataDir: string; port: string; endpoint?: string },
): ChildProcess[] {
  const bin = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
  return appNodeArgs(argv, apps, o).map((args) =>
    spawn(process.execPath, [bin, ...args], { stdio: 'inherit' }),
  );
}
