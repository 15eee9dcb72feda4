import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { measurementDigest, repoRoot } from '@firn/core';
import { build } from 'esbuild';

export interface EnclaveBundle {
  path: string;
  /** SHA-256 of the bundle bytes: the simulated TEE's raw measurement register. */
  sha256: Uint8Array;
  /** The measurement digest the registry allow-lists. */
  measurement: Uint8Array;
}

export function defaultBundlePath(): string {
  return join(repoRoot(), 'packages', 'enclave', 'dist', 'enclave.mjs');
}

/**
 * Build the enclave program into one deterministic ESM file. Native and WASM ML runtimes stay
 * external (loaded from node_modules), so the measurement covers the program's own code.
 */
export async function buildEnclaveBundle(outfile = defaultBundlePath()): Promise<EnclaveBundle> {
  mkdirSync(dirname(outfile), { recursive: true });
  // The ML runtimes stay external; a bundle written outside the repository finds them through a
  // node_modules link beside it.
  const link = join(dirname(outfile), 'node_modules');
  if (!dirname(outfile).startsWith(repoRoot()) && !existsSync(link))
    symlinkSync(join(repoRoot(), 'node_modules'), link, 'dir');
  await build({
    entryPoints: [join(repoRoot(), 'packages', 'enclave', 'src', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    legalComments: 'none',
    logLevel: 'error',
    external: ['onnxruntime-node', '@tensorflow/*'],
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
  });
  return measureEnclaveBundle(outfile);
}

export function measureEnclaveBundle(path = defaultBundlePath()): EnclaveBundle {
  const sha256 = new Uint8Array(createHash('sha256').update(readFileSync(path)).digest());
  return { path, sha256, measurement: measurementDigest('simulated', [sha256]) };
}
