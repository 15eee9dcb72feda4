import { join } from 'node:path';
import { describe, it } from 'vitest';
import { expectRequesterRefusesBomb } from '../helpers/requesterJsonBomb.ts';

// A hostile node host answers GET /v1/jobs/{id}/result with 20 M empty objects in `outputs`:
// 60 MB at depth 2, under the requester's 64 MiB answer cap and its nesting check (which bounds
// depth only). JSON.parse builds one object per 3 body bytes, so the bounded body becomes about a
// gigabyte of heap before the schema (at most 16 outputs) can refuse it. The requester, here with
// a 384 MiB heap (a small machine), must refuse the answer (E_PARSE) rather than die of heap
// exhaustion: the same promise as requester-json-nesting-bomb.test.ts, for width.

describe('attack: a JSON container bomb within the answer cap', () => {
  it('is refused with E_PARSE, and the requester survives', () => {
    expectRequesterRefusesBomb(join(import.meta.dirname, 'jsonWideBombClient.ts'), 20_000_000);
  }, 120_000);
});
