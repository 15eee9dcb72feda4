import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FirnError, type Hex } from '@firn/core';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeApi } from './nodeApi.ts';

// The requester's side of the event stream (docs/decisions/1040) and of network failures, against
// a local HTTP server that plays a host dropping, reordering or cutting events.
const JOB = `0x${'ab'.repeat(32)}` as Hex;
let server: Server | undefined;

afterEach(async () => {
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = undefined;
});

async function host(handler: (res: ServerResponse, lastEventId: string | undefined, n: number) => void) {
  let n = 0;
  server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    handler(res, req.headers['last-event-id'] as string | undefined, n++);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
}

const progress = (seq: number) =>
  `id: ${seq}\nevent: progress\ndata: {"seq": ${seq}, "message": "m${seq}"}\n\n`;
const end = (events: number) => `event: end\ndata: {"status": "proved", "events": ${events}}\n\n`;

describe('NodeApi.followEvents', () => {
  it('delivers every event once, in order, and returns the end', async () => {
    const url = await host((res) => res.end(progress(0) + progress(1) + end(2)));
    const got: string[] = [];
    const r = await new NodeApi(url).followEvents(JOB, (m) => {
      got.push(m);
    });
    expect(got).toEqual(['m0', 'm1']);
    expect(r.status).toBe('proved');
  });

  it('a dropped tail (end names more events than arrived) is E_UNAVAILABLE, never success', async () => {
    const url = await host((res) => res.end(progress(0) + end(3)));
    await expect(new NodeApi(url).followEvents(JOB, () => {})).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringMatching(/ended after 1 of 3 events/),
    });
  });

  it('a gap in seq (a dropped event in the middle) is E_UNAVAILABLE', async () => {
    const url = await host((res) => res.end(progress(0) + progress(2) + end(3)));
    await expect(new NodeApi(url).followEvents(JOB, () => {})).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringMatching(/skipped from event 1 to 2/),
    });
  });

  it('a stream cut without end is resumed from the last seq (Last-Event-ID), each event once', async () => {
    const seen: (string | undefined)[] = [];
    const url = await host((res, last, n) => {
      seen.push(last);
      if (n === 0)
        res.end(progress(0) + progress(1)); // cut: no end
      else res.end(progress(0) + progress(1) + progress(2) + end(3)); // a node that replays all
    });
    const got: string[] = [];
    const r = await new NodeApi(url).followEvents(
      JOB,
      (m) => {
        got.push(m);
      },
      { reconnectDelayMs: 10 },
    );
    expect(got).toEqual(['m0', 'm1', 'm2']);
    expect(r.status).toBe('proved');
    expect(seen).toEqual([undefined, '1']);
  });

  it('a stream that never ends is E_UNAVAILABLE after the bounded reconnects', async () => {
    const url = await host((res) => res.end(progress(0)));
    await expect(
      new NodeApi(url).followEvents(JOB, () => {}, { reconnects: 2, reconnectDelayMs: 5 }),
    ).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringMatching(/closed without an end/),
    });
  });

  it('an idle stream (no byte, no keep-alive) is E_TIMEOUT, not a wait forever', async () => {
    const url = await host(() => {}); // headers sent, then silence
    await expect(
      new NodeApi(url).followEvents(JOB, () => {}, { idleMs: 200, reconnects: 0 }),
    ).rejects.toMatchObject({ code: 'E_TIMEOUT' });
  });
});

describe('NodeApi.followEvents bounded by its caller (decision 1475)', () => {
  it('a host that sends keep-alives for ever holds the stream past idleMs; the signal ends it, with its reason, and no reconnect follows', async () => {
    let connections = 0;
    const url = await host((res) => {
      connections++;
      const t = setInterval(() => res.write(': keep-alive\n\n'), 30);
      res.on('close', () => clearInterval(t));
    });
    const ctl = new AbortController();
    const reason = new FirnError('E_TIMEOUT', `claim on job ${JOB} lapsed`, { details: { jobId: JOB } });
    const t0 = performance.now();
    let settled = false;
    const follow = new NodeApi(url)
      .followEvents(JOB, () => {}, { idleMs: 200, reconnectDelayMs: 5, signal: ctl.signal })
      .finally(() => {
        settled = true;
      });
    // The keep-alives (every 30 ms) keep a 200 ms idle limit from tripping: still waiting at 600 ms.
    await new Promise((r) => setTimeout(r, 600));
    expect(settled).toBe(false);
    ctl.abort(reason);
    await expect(follow).rejects.toBe(reason);
    expect(performance.now() - t0).toBeLessThan(3_000);
    expect(connections).toBe(1);
    server!.closeAllConnections();
  });

  it('a signal aborted before the call rejects at once without connecting', async () => {
    let connections = 0;
    const url = await host((res) => {
      connections++;
      res.end();
    });
    await expect(
      new NodeApi(url).followEvents(JOB, () => {}, { signal: AbortSignal.abort('stop') }),
    ).rejects.toMatchObject({ code: 'E_TIMEOUT', message: expect.stringContaining(JOB) });
    expect(connections).toBe(0);
  });
});

describe('NodeApi network failures are typed', () => {
  it('a refused connection is E_UNAVAILABLE naming the node', async () => {
    const url = await host(() => {});
    await new Promise((r) => server!.close(r));
    server = undefined;
    await expect(new NodeApi(url).getJob(JOB)).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringContaining(url),
    });
  });

  it('an unanswered request is E_TIMEOUT after the timeout, not 120 s', async () => {
    server = createServer(() => {}); // never answers
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const t = Date.now();
    await expect(new NodeApi(url, 300).getJob(JOB)).rejects.toMatchObject({ code: 'E_TIMEOUT' });
    expect(Date.now() - t).toBeLessThan(5000);
    server.closeAllConnections();
  });
});
