import { connect, type Socket } from 'node:net';

/**
 * Opens `count` connections to the node at `baseUrl`, each sending `GET <path>` and then never
 * reading (paused sockets, pushed onto `sockets` for the caller to destroy), waits `settleMs`, and
 * returns how much this process's RSS grew meanwhile, bytes (after a GC when --expose-gc is on).
 */
export async function rssGrowthWithUnreadReaders(
  baseUrl: string,
  path: string,
  count: number,
  sockets: Socket[],
  settleMs = 3000,
): Promise<number> {
  global.gc?.();
  const before = process.memoryUsage().rss;
  const { hostname, port } = new URL(baseUrl);
  for (let i = 0; i < count; i++) {
    const s = connect(Number(port), hostname);
    sockets.push(s);
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.pause(); // never read
    s.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`);
  }
  await new Promise((r) => setTimeout(r, settleMs));
  return process.memoryUsage().rss - before;
}
