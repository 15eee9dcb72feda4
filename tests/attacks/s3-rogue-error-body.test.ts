import type { Hex } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peakMemoryGrowth, type RogueBucket, startRogueBucket } from '../helpers/rogueBucket.ts';

// A rogue bucket answers a read with an error status and an endless-looking error body (here
// 256 MiB, sent fast). The node must refuse it (E_UNAVAILABLE) without holding the whole error
// body in memory.
const ERROR_BYTES = 256 * 2 ** 20;
const ID = `0x${'12'.repeat(32)}` as Hex;

describe('attack: a bucket that answers with a huge error body', () => {
  let bucket: RogueBucket;
  beforeAll(async () => {
    const chunk = Buffer.alloc(2 ** 20, 0x41);
    bucket = await startRogueBucket((req, res) => {
      req.resume();
      if (req.method === 'HEAD') {
        res.writeHead(404);
        res.end();
        return;
      }
      // A read gets an error status; a write gets 200 OK with the same endless body.
      res.writeHead(req.method === 'PUT' ? 200 : 500, {
        'content-type': 'application/xml',
        'content-length': ERROR_BYTES,
      });
      let sent = 0;
      const pump = () => {
        while (sent < ERROR_BYTES) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
  });
  afterAll(() => bucket?.close());

  it('is E_UNAVAILABLE and the node never buffers the error body (memory grows by < 64 MiB)', async () => {
    const store = bucket.store();
    const { settled: err, peak } = await peakMemoryGrowth(() => store.get(ID, 1024));
    expect((err as { code?: string })?.code).toBe('E_UNAVAILABLE');
    expect(peak).toBeLessThan(64 * 2 ** 20);
  }, 60_000);

  it('a write answered 200 with a huge body is not buffered either (memory grows by < 64 MiB)', async () => {
    const store = bucket.store();
    const { peak } = await peakMemoryGrowth(() => store.put(Buffer.from('some sealed bytes')));
    expect(peak).toBeLessThan(64 * 2 ** 20);
  }, 60_000);
});
