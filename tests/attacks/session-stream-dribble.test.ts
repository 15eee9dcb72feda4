import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from '@firn/core';
import { describe, expect, it } from 'vitest';

// A relayed session stream (GET /v1/sessions/{id}/stream, upgraded) reads frames with
// StreamFrameReader from the socket's 'data' events. A sender dribbling one 8 MiB frame a byte at a
// time made it keep one Buffer per read until the frame was whole: ~120 bytes of heap per byte
// (measured here before the change: 670k reads, 133 MiB retained, RSS +266 MiB for the 8 MiB
// frame). The reader now copies a split frame into one buffer of its own (decision 1602).
// Measured in a receiver process of its own (tests/helpers/streamFrameReceiver.mjs) so the figures
// are its alone; the sender writes 1 byte per write for at most DRIBBLE_MS, then the rest at once.
const N = 8 * 1024 * 1024;
const DRIBBLE_MS = 30_000;

describe('attack: an 8 MiB session stream frame sent 1 byte per write over 127.0.0.1', () => {
  it('the relay holds about the frame, not one buffer per read', async () => {
    const child = spawn(
      process.execPath,
      ['--expose-gc', join(repoRoot(), 'tests', 'helpers', 'streamFrameReceiver.mjs')],
      { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
      const { port } = JSON.parse((await lines.next()).value as string) as { port: number };
      const s = connect(port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      s.setNoDelay(true);
      const body = Buffer.alloc(N);
      for (let i = 0; i < N; i++) body[i] = (i * 31) & 255;
      const wire = Buffer.alloc(5 + N);
      wire.writeUInt32BE(N + 1, 0);
      wire[4] = 1;
      body.copy(wire, 5);
      const until = Date.now() + DRIBBLE_MS;
      let i = 0;
      for (; i < wire.length && Date.now() < until; i++) {
        // A copy per write (as a peer's writes arrive), never a view of one big buffer.
        if (!s.write(Buffer.from(wire.subarray(i, i + 1)))) await new Promise((r) => s.once('drain', r));
        // Let each few bytes go out (and be read) on their own.
        if (i % 1024 === 0) await new Promise((r) => setImmediate(r));
      }
      const dribbled = i;
      s.write(wire.subarray(i));
      const got = JSON.parse((await lines.next()).value as string) as {
        frame: number;
        sha256: string;
        chunks: number;
        peakRssGrowth: number;
        peakExternalGrowth: number;
        peakRetainedGrowth: number;
      };
      s.destroy();
      const mib = (n: number) => (n / 2 ** 20).toFixed(1);
      console.log(
        `8 MiB frame, ${dribbled} bytes sent 1 per write: ${got.chunks} reads; receiver peak RSS +${mib(got.peakRssGrowth)} MiB, external +${mib(got.peakExternalGrowth)} MiB, retained (after gc) +${mib(got.peakRetainedGrowth)} MiB`,
      );
      expect(got.frame).toBe(N);
      expect(got.sha256).toBe(createHash('sha256').update(body).digest('hex'));
      // The attack had effect: most of the frame came in many small reads.
      expect(dribbled).toBeGreaterThan(N / 8);
      expect(got.chunks).toBeGreaterThan(10_000);
      // What the reader holds: at most about twice the frame.
      expect(got.peakRetainedGrowth).toBeLessThan(2 * N);
    } finally {
      child.kill();
    }
  }, 60_000);
});
