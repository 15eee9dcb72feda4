import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { StreamFrameReader } from './protocol.ts';

const frame = (tag: number, body: Buffer) => {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(body.length + 1, 0);
  h[4] = tag;
  return Buffer.concat([h, body]);
};

describe('StreamFrameReader', () => {
  it('reads the same frames whatever the chunks: cut at every offset, and several per chunk', () => {
    const frames = [
      [1, randomBytes(0)],
      [2, randomBytes(3)],
      [3, randomBytes(70_000)],
      [4, randomBytes(1)],
    ] as const;
    const wire = Buffer.concat(frames.map(([t, b]) => frame(t, b)));
    const cuts = [1, 2, 3, 4, 5, 6, 7, 4096, 65_536, 69_999, wire.length];
    for (const size of cuts) {
      const r = new StreamFrameReader(1 << 20);
      const got: { tag: number; body: Buffer }[] = [];
      for (let off = 0; off < wire.length; off += size) got.push(...r.push(wire.subarray(off, off + size)));
      expect(got.map((f) => f.tag)).toEqual(frames.map(([t]) => t));
      for (const [i, f] of got.entries()) expect(f.body.equals(frames[i]![1])).toBe(true);
    }
  });

  it('a split frame is its own buffer: a later chunk does not change an emitted body', () => {
    const r = new StreamFrameReader(1 << 20);
    const wire = frame(1, Buffer.from('hello'));
    expect(r.push(wire.subarray(0, 6))).toEqual([]);
    const [f] = r.push(wire.subarray(6));
    const again = frame(1, Buffer.from('XXXXX'));
    r.push(again.subarray(0, 7));
    expect(f!.body.toString()).toBe('hello');
  });

  it('refuses a zero length and a length over the cap before buffering, also when the header is split', () => {
    const zero = Buffer.alloc(5);
    expect(() => new StreamFrameReader(100).push(zero)).toThrow(/empty session stream frame/);
    const big = Buffer.alloc(4);
    big.writeUInt32BE(101, 0);
    expect(() => new StreamFrameReader(100).push(big)).toThrow(/at most 100 bytes/);
    const r = new StreamFrameReader(100);
    expect(r.push(big.subarray(0, 2))).toEqual([]);
    expect(() => r.push(big.subarray(2))).toThrow(/at most 100 bytes/);
  });

  it('attack: an 8 MiB frame in 1-byte chunks holds about its own size, not ~120 bytes per chunk', () => {
    // Before: one Buffer per chunk until the frame completed (8 MiB in 1-byte chunks: ~850 MiB of
    // heap). Now the frame is copied into one buffer grown by doubling: at most ~2x what arrived.
    const N = 8 * 1024 * 1024;
    const r = new StreamFrameReader(16 * 1024 * 1024);
    const wire = frame(1, Buffer.alloc(N, 7));
    const retained = () => {
      (globalThis as { gc?: () => void }).gc?.();
      const m = process.memoryUsage();
      return m.heapUsed + m.external;
    };
    const before = retained();
    let peak = 0;
    let got: { tag: number; body: Buffer }[] = [];
    for (let i = 0; i < wire.length; i++) {
      // A fresh 1-byte chunk each time, as a socket read would hand it (copied, not a view).
      got = r.push(Buffer.from(wire.subarray(i, i + 1)));
      if (i % (1 << 20) === 0) peak = Math.max(peak, retained() - before);
    }
    expect(got).toHaveLength(1);
    expect(got[0]!.body.length).toBe(N);
    // Without --expose-gc the figure includes garbage not yet collected: the bound is loose there.
    const bound = (globalThis as { gc?: () => void }).gc ? 2 * N : 8 * N;
    expect(peak).toBeLessThan(bound);
  }, 60_000);
});
