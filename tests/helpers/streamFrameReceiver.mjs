// A receiver for tests/attacks/session-stream-dribble.test.ts: a TCP server on 127.0.0.1 that reads
// session stream frames with StreamFrameReader from socket 'data' events, as the node's relayed
// session stream does (packages/node/src/jobs/sessionApi.ts), and reports the first frame with the
// process's memory growth while it was being read.
// Usage: node --expose-gc streamFrameReceiver.mjs; prints {"port"} then {"frame", ...} as JSON lines.
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../../tsconfig.json', import.meta.url)) });
const { StreamFrameReader, MAX_STREAM_FRAME_BYTES } = await import('../../packages/enclave/src/protocol.ts');
globalThis.gc?.();
const base = process.memoryUsage();
const server = createServer((socket) => {
  const reader = new StreamFrameReader(MAX_STREAM_FRAME_BYTES);
  let chunks = 0;
  let peakRss = 0;
  let peakExternal = 0;
  let peakRetained = 0;
  // RSS and external as they are, and what stays reachable (heap + external after a full
  // collection: what the reader holds, without the garbage of the socket's reads).
  const sample = (collect) => {
    let m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss - base.rss);
    peakExternal = Math.max(peakExternal, m.external + m.arrayBuffers - base.external - base.arrayBuffers);
    if (!collect || globalThis.gc === undefined) return;
    globalThis.gc();
    m = process.memoryUsage();
    peakRetained = Math.max(peakRetained, m.heapUsed + m.external - base.heapUsed - base.external);
  };
  socket.on('data', (chunk) => {
    chunks++;
    if ((chunks & 1023) === 0) sample((chunks & 8191) === 0);
    for (const f of reader.push(chunk)) {
      sample(false);
      const m = process.memoryUsage();
      process.stdout.write(
        `${JSON.stringify({
          frame: f.body.length,
          sha256: createHash('sha256').update(f.body).digest('hex'),
          chunks,
          peakRssGrowth: peakRss,
          peakExternalGrowth: peakExternal,
          peakRetainedGrowth: peakRetained,
          heapGrowth: m.heapUsed - base.heapUsed,
        })}\n`,
      );
      socket.end();
      server.close();
    }
  });
});
server.listen(0, '127.0.0.1', () =>
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`),
);
