import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NodeApi } from '@firn/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// A hostile node host answers the requester's calls with a redirect: to another node's endpoint,
// or to an address only the requester's machine can reach. The requester must talk to the node it
// chose and no one else (as the verifier's evidence fetch already does, decision 1220): a 3xx is a
// refusal naming the node, and the target is never contacted.

const ID = `0x${'ab'.repeat(32)}` as const;
let target: Server;
let node: Server;
const targetHits: string[] = [];
let status = 307;
const url = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;

beforeAll(async () => {
  target = createServer((req, res) => {
    targetHits.push(`${req.method} ${req.url}`);
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ jobId: ID, status: 'running' }));
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  node = createServer((req, res) => {
    req.resume();
    res.statusCode = status;
    res.setHeader('location', `${url(target)}${req.url}`);
    res.end();
  });
  await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
});
afterAll(async () => {
  await new Promise((r) => target.close(r));
  await new Promise((r) => node.close(r));
});

describe('attack: a node host redirects the requester', () => {
  it('GET job, GET artifact, session request and the event stream refuse 3xx; the target is never asked', async () => {
    const api = new NodeApi(url(node), 5_000);
    for (const s of [307, 308, 302]) {
      status = s;
      await expect(api.getJob(ID)).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
      await expect(api.getArtifact(ID, 1024)).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
      await expect(api.sessionRequest(ID, new Uint8Array(8), 1024)).rejects.toMatchObject({
        code: 'E_UNAVAILABLE',
      });
      await expect(api.followEvents(ID, () => {}, { reconnects: 0, idleMs: 2_000 })).rejects.toMatchObject({
        code: 'E_UNAVAILABLE',
      });
    }
    expect(targetHits).toEqual([]);
  });

  it('control: the target answers a direct call (so a followed redirect reaches it)', async () => {
    const rec = await new NodeApi(url(target), 5_000).getJob(ID);
    expect(rec.status).toBe('running');
    targetHits.length = 0;
  });
});
