import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { S3ArtifactStore } from '../../packages/node/src/storage/s3ArtifactStore.ts';

/** A rogue S3-compatible server on 127.0.0.1 and the node's S3 store pointed at it. */
export interface RogueBucket {
  /** Its base URL, `http://127.0.0.1:<port>`. */
  endpoint: string;
  /** An S3ArtifactStore (bucket `b-ucket`, no prefix, throwaway credentials) reading and writing here. */
  store(): S3ArtifactStore;
  /** Destroys every open connection (a rogue may hold them forever) and stops listening. */
  close(): void;
}

/** Starts a rogue bucket that answers every request with `handler`. */
export async function startRogueBucket(handler: RequestListener): Promise<RogueBucket> {
  const sockets = new Set<Socket>();
  const server = createServer(handler);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    store: () =>
      new S3ArtifactStore({
        bucket: 'b-ucket',
        prefix: '',
        endpoint,
        credentials: { accessKeyId: 'R', secretAccessKey: 'R' },
      }),
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/**
 * Runs `fn` while sampling this process's memory every 5 ms; returns what `fn` settled with (its
 * value or the error it threw) and the peak growth of heapUsed + arrayBuffers over the start, bytes.
 */
export async function peakMemoryGrowth(
  fn: () => Promise<unknown>,
): Promise<{ settled: unknown; peak: number }> {
  const base = process.memoryUsage();
  const baseline = base.arrayBuffers + base.heapUsed;
  let peak = 0;
  const sample = setInterval(() => {
    const m = process.memoryUsage();
    peak = Math.max(peak, m.arrayBuffers + m.heapUsed - baseline);
  }, 5);
  try {
    const settled = await fn().then(
      (v) => v,
      (e: unknown) => e,
    );
    return { settled, peak };
  } finally {
    clearInterval(sample);
  }
}
