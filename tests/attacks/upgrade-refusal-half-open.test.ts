import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { applyHttpLimits, DEFAULT_HTTP_LIMITS } from '../../packages/node/src/http/limits.ts';
import { sessionStreamUpgrade } from '../../packages/node/src/http/nodeApi.ts';

// The attack: a stranger (no keys) sends HTTP Upgrade requests the node refuses (a path that is
// no session stream: 404; the same for a bad token, a rate limit or a full session, which the
// session service refuses the same way), and never closes its side of the connection (a TCP
// half-close: it reads the refusal and its FIN, sends nothing more). The refusal was written with
// `socket.end()` on a socket the HTTP server had handed over (its timeout listener removed) and
// the HTTP server keeps half-open sockets: each one stayed open for ever, past the 30 s idle
// limit (docs/api.md, "Limits": a socket idle for 30 s is closed), holding a connection slot of
// its address and of the node. Here with the node's own limits (an idle limit of 500 ms, 4
// connections per address): after the idle limit, the stranger's refused connections must be
// gone and a fresh request from the same address served.
let server: Server | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = undefined;
});

describe('attack: refused upgrades held half-open', () => {
  it('a refused upgrade is closed by the idle limit, not kept for ever', async () => {
    server = createServer((_req, res) => res.end('ok'));
    applyHttpLimits(server, { ...DEFAULT_HTTP_LIMITS, idleTimeoutMs: 500, maxConnectionsPerIp: 4 });
    // The node's upgrade handler; a serve-only node (no job service) refuses every stream 404.
    server.on('upgrade', sessionStreamUpgrade({ jobs: undefined }));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const refused: Promise<string>[] = [];
    for (let i = 0; i < 4; i++) {
      const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      s.on('error', () => undefined);
      sockets.push(s);
      let text = '';
      refused.push(
        new Promise((r) => {
          s.on('data', (d) => {
            text += d.toString('latin1');
          });
          s.once('end', () => r(text));
        }),
      );
      s.write(
        `GET /v1/sessions/${i}/stream HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: firn-session/1\r\n\r\n`,
      );
    }
    // Every upgrade was refused (and the node ended its side).
    for (const t of await Promise.all(refused)) expect(t).toMatch(/^HTTP\/1\.1 404/);
    // Four times the idle limit later.
    await new Promise((r) => setTimeout(r, 2000));
    const open = await new Promise<number>((r) => server!.getConnections((_e, n) => r(n)));
    expect(open).toBe(0);
    const status = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.status,
      () => 0,
    );
    expect(status).toBe(200);
  });
});
