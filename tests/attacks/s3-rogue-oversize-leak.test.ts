import { createHash } from 'node:crypto';
import type { Hex } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RogueBucket, startRogueBucket } from '../helpers/rogueBucket.ts';

// A rogue bucket announces a huge object (Content-Length over the reader's limit) and keeps the
// connection open. The read is refused E_TOO_LARGE, but if the response body is never destroyed
// its socket stays with the client: enough such reads take every socket of the S3 client and
// every later read of a good object waits forever.
const GOOD = Buffer.from('the good object');
const GOOD_ID = `0x${createHash('sha256').update(GOOD).digest('hex')}` as Hex;
const HUGE_ID = `0x${'ef'.repeat(32)}` as Hex;

describe('attack: a bucket that announces huge objects and holds the connection', () => {
  let bucket: RogueBucket;
  beforeAll(async () => {
    bucket = await startRogueBucket((req, res) => {
      req.resume();
      if (req.url?.includes(GOOD_ID.slice(2))) {
        res.writeHead(200, { 'content-length': GOOD.length });
        res.end(GOOD);
        return;
      }
      res.writeHead(200, { 'content-length': 10 * 2 ** 30 });
      res.write(Buffer.alloc(16));
    });
  });
  afterAll(() => bucket?.close());

  it('refused oversized reads release their connection: a good read still answers', async () => {
    const store = bucket.store();
    const run = async () => {
      for (let i = 0; i < 60; i++) {
        const e = await store.get(HUGE_ID, 1024).then(
          () => undefined,
          (err: unknown) => err,
        );
        if ((e as { code?: string })?.code !== 'E_TOO_LARGE') return `read ${i}: ${String(e)}`;
      }
      return Buffer.from(await store.get(GOOD_ID, 1024)).toString();
    };
    const got = await Promise.race([
      run(),
      new Promise((r) => setTimeout(() => r('still waiting'), 20_000).unref()),
    ]);
    expect(got).toBe(GOOD.toString());
  }, 30_000);
});
