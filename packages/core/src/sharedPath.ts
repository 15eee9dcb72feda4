import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest ancestor of this file holding biome.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'biome.json')) && existsSync(join(dir, 'packages'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
}

/**
 * A path under the shared folder beside the checkout (test vectors, datasets). FIRN_SHARED_DIR
 * overrides it.
 */
export function sharedPath(...parts: string[]): string {
  const base = process.env.FIRN_SHARED_DIR ?? resolve(repoRoot(), '..', 'shared');
  return join(base, ...parts);
}
