import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { describe, expect, it } from 'vitest';

/**
 * The enclave/host line: code that runs inside the TEE (packages/enclave, packages/ml) must never
 * import host packages. This reads every import specifier; it does not follow dynamic imports
 * built from strings (none are allowed there).
 */
const HOST = ['@firn/node', '@firn/chain', '@firn/client', '@firn/cli', '@firn/verifier', '@firn/kms'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'fixtures' ? [] : sources(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

describe('enclave boundary', () => {
  for (const pkg of ['enclave', 'ml', 'app']) {
    it(`packages/${pkg} imports no host package`, () => {
      const files = sources(join(repoRoot(), 'packages', pkg, 'src'));
      expect(files.length).toBeGreaterThan(3);
      const offenders: string[] = [];
      for (const f of files) {
        const text = readFileSync(f, 'utf8');
        for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
          const spec = m[1]!;
          if (
            HOST.some((h) => spec === h || spec.startsWith(`${h}/`)) ||
            spec.includes('/node/src') ||
            spec.includes('/chain/src') ||
            spec.includes('/kms/src')
          )
            offenders.push(`${f}: ${spec}`);
        }
      }
      expect(offenders).toEqual([]);
    });
  }
});
