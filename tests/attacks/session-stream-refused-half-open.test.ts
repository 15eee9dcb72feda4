import { request } from 'node:http';
import type { Socket } from 'node:net';
import type { InferenceSession } from '@firn/client';
import { describe, expect, it } from 'vitest';
import { useNetworkSession } from '../helpers/networkSession.ts';

// The attack (red team): a session stream whose frame is refused by its header or size (an
// unknown tag, a frame over the cap, a replayed sequence number) gets its refusal frame and the
// node ends its side (`socket.end()`), but nothing destroys the socket: the upgraded socket has no
// timeout (set to 0 for the stream) and the server keeps it half-open, so a peer that never
// closes its side holds it until the stream idle check (5 min) notices. Each such socket counts
// against the session's 4 streams (a fifth is refused 409) and the per-IP connection cap.
// Promise (decision 1550, 2., docs/api.md): "Every ended stream first gets a refusal frame ...; the
// socket is destroyed 1 s after `end()` whether the peer closes or not."
const fixture = useNetworkSession(7, 'stream');

/** Upgrade a raw connection to the session stream; it never closes its side by itself. */
function rawStream(s: InferenceSession): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(`/v1/sessions/${s.sessionId}/stream`, fixture.net.node.url), {
      headers: { connection: 'Upgrade', upgrade: 'firn-session/1', 'x-firn-session-token': s.accessToken! },
    });
    req.on('upgrade', (_res, socket: Socket) => {
      // A peer that keeps its side open after the node's FIN (as a half-open TCP peer does).
      socket.allowHalfOpen = true;
      resolve(socket);
    });
    req.on('response', (r) => reject(new Error(`status ${r.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}

describe('attack: a refused session stream left half-open', () => {
  it('the node destroys a stream it refused within about a second, whether the peer closes or not', async () => {
    // The node's own view of the session's streams (a socket leaves it when the node closes it).
    const open = (
      fixture.net.node.jobs!.sessions as unknown as { open: Map<string, { streams: Set<unknown> }> }
    ).open;
    const streams = () => open.get(fixture.session.sessionId.toLowerCase())?.streams.size ?? 0;
    const before = streams();
    const socket = await rawStream(fixture.session);
    const parts: Buffer[] = [];
    socket.on('data', (c: Buffer) => parts.push(c));
    for (let i = 0; i < 100 && streams() === before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(streams()).toBe(before + 1);
    // A frame with an unknown tag (9): refused by its header.
    const frame = Buffer.alloc(6);
    frame.writeUInt32BE(1, 0);
    frame[4] = 9;
    socket.write(frame);
    const t0 = Date.now();
    while (Date.now() - t0 < 5_000 && streams() > before) await new Promise((r) => setTimeout(r, 50));
    const ms = Date.now() - t0;
    socket.destroy();
    const data = Buffer.concat(parts);
    // The refusal frame came (tag 1) ...
    expect(data[4]).toBe(1);
    expect(JSON.parse(data.subarray(5, 4 + data.readUInt32BE(0)).toString('utf8')).code).toBe('E_PARSE');
    // ... and the node closed the socket itself within about a second (no longer one of the
    // session's streams), though the peer kept its side open.
    expect(ms).toBeLessThan(3_000);
  }, 30_000);
});
