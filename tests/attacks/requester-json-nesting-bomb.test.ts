import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// A hostile node host answers a JSON route with 20 M nested arrays: 40 MB, under the requester's
// 64 MiB answer cap. JSON.parse builds one array per level (about 30 bytes of heap per body byte),
// so the bounded body becomes over a gigabyte of heap. The requester, here with a 384 MiB heap
// (a small machine), must refuse the answer (E_PARSE) rather than die of heap exhaustion.

describe('attack: deeply nested JSON within the answer cap', () => {
  it('is refused with E_PARSE, and the requester survives', () => {
    const r = spawnSync(
      process.execPath,
      [
        '--max-old-space-size=384',
        '--import',
        'tsx',
        join(import.meta.dirname, 'jsonBombClient.ts'),
        '20000000',
      ],
      { encoding: 'utf8', timeout: 90_000 },
    );
    expect(r.stderr).not.toMatch(/heap out of memory/);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('E_PARSE');
  }, 120_000);
});
