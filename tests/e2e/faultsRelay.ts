import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A JSON-RPC relay in front of anvil that a test can cut and restore: while down, every
 * connection is reset without an answer (what a node sees when its RPC endpoint or anvil dies).
 */
export interface RpcRelay {
  url: string;
  down: boolean;
  /** Requests relayed (answered) so far. */
  relayed: number;
  close(): Promise<void>;
}

export async function startRpcRelay(target: string): Promise<RpcRelay> {
  const state = { down: false, relayed: 0 };
  const server: Server = createServer((req, res) => {
    if (state.down) {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      fetch(target, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: Buffer.concat(chunks),
      })
        .then(async (r) => {
          const body = Buffer.from(await r.arrayBuffer());
          if (state.down) return req.socket.destroy();
          state.relayed++;
          res.writeHead(r.status, { 'content-type': 'application/json' });
          res.end(body);
        })
        .catch(() => req.socket.destroy());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get down() {
      return state.down;
    },
    set down(v: boolean) {
      state.down = v;
      if (v) server.closeAllConnections();
    },
    get relayed() {
      return state.relayed;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Poll `f` until it returns a value other than undefined, or fail after `ms`. */
export async function waitFor<T>(
  what: string,
  f: () => Promise<T | undefined> | T | undefined,
  ms = 20_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
