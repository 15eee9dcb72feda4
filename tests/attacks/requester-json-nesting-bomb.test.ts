import { join } from 'node:path';
import { describe, it } from 'vitest';
import { expectRequesterRefusesBomb } from '../helpers/requesterJsonBomb.ts';

// A hostile node host answers a JSON route with 20 M nested arrays: 40 MB, under the requester's
// 64 MiB answer cap. JSON.parse builds one array per level (about 30 bytes of heap per body byte),
// so the bounded body becomes over a gigabyte of heap. The requester, here with a 384 MiB heap
// (a small machine), must refuse the answer (E_PARSE) rather than die of heap exhaustion.

describe('attack: deeply nested JSON within the answer cap', () => {
  it('is refused with E_PARSE, and the requester survives', () => {
    expectRequesterRefusesBomb(join(import.meta.dirname, 'jsonBombClient.ts'), 20_000_000);
  }, 120_000);
});
