import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { firnJobMarketAbi, firnRegistryBytecode } from './generated.ts';

// Rebuilds the contracts into a temporary folder (solc-js, a few seconds) and compares the result
// with the committed file. Does not check that the contracts are correct, only that the TypeScript
// view of them is current.
describe('generated ABI', () => {
  it('matches what the current contract sources compile to', () => {
    const root = repoRoot();
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'gen-abi.mjs'), '--check'], {
      encoding: 'utf8',
    });
    expect(r.stderr + r.stdout).toContain('up to date');
    expect(r.status).toBe(0);
  });

  it('exports ABIs and bytecode in the expected shape', () => {
    expect(firnRegistryBytecode.startsWith('0x60')).toBe(true);
    const names = firnJobMarketAbi.filter((x) => x.type === 'function').map((x) => x.name);
    expect(names).toContain('submitProof');
  });
});
