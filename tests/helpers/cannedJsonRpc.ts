import { createServer, type Server } from 'node:http';

/** What a canned JSON-RPC server answers to every message: one result, or one JSON-RPC error. */
export type CannedRpcAnswer = { result: unknown } | { error: { code: number; message: string } };

/** A canned JSON-RPC server listening on 127.0.0.1: the caller closes `server`. */
export interface CannedJsonRpc {
  server: Server;
  /** `http://127.0.0.1:PORT`. */
  url: string;
}

/**
 * Starts an HTTP JSON-RPC server on a free port of 127.0.0.1 that answers every message, alone or in
 * a batch, whatever its method, with `answer` under the message's id (1 when it has none; a body
 * that is not JSON counts as one message without an id): an RPC of another chain, or a hosted RPC
 * whose quota is spent, as a CLI under test meets it.
 */
export async function startCannedJsonRpc(answer: CannedRpcAnswer): Promise<CannedJsonRpc> {
  const server = createServer((req, res) => {
    let b = '';
    req.on('data', (c) => (b += c));
    req.on('end', () => {
      const one = (x: { id?: number }) => ({ jsonrpc: '2.0', id: x.id ?? 1, ...answer });
      let j: unknown;
      try {
        j = JSON.parse(b);
      } catch {
        j = {};
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(Array.isArray(j) ? j.map(one) : one(j as { id?: number })));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}
