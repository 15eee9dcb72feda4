import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hex } from '@firn/core';
import { artifactIdOf, storageService } from '../../../../tests/helpers/storageService.ts';
import type { JobService } from './jobApi.ts';

// Decision 1662: HEAD on a result or an event stream runs the GET's checks and answers headers
// alone: no output is read or inlined, no event is read, no stream place is taken.

let dir: string;
let svc: JobService;
const clock = { now: Math.floor(Date.now() / 1000) };
const JOB = `0x${'5a'.repeat(32)}` as Hex;
const output = Buffer.alloc(64 * 1024, 9);

/** A response that records what is written. */
function recorder() {
  const r = { status: 0, headers: {} as Record<string, unknown>, body: [] as unknown[], ended: false };
  const res = {
    writeHead: (s: number, h: Record<string, unknown>) => {
      r.status = s;
      r.headers = h;
    },
    write: (c: unknown) => {
      r.body.push(c);
      return true;
    },
    end: (c?: unknown) => {
      if (c !== undefined) r.body.push(c);
      r.ended = true;
    },
    once: () => res,
    on: () => res,
    headersSent: false,
  } as unknown as ServerResponse;
  return { r, res };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'firn-head-'));
  svc = storageService(dir, clock);
  const id = artifactIdOf(output);
  await svc.artifacts.put(Readable.from([output]), output.length, id);
  svc.jobs.put({
    jobId: JOB,
    status: 'proved',
    inputs: [],
    outputs: [
      { role: 'result', artifactId: id, contentType: 'application/octet-stream', size: output.length },
    ],
    proof: {} as never,
    createdAt: clock.now,
    updatedAt: clock.now,
  });
  svc.db.appendEvent(JOB, 'sealed-progress');
});

afterAll(() => {
  svc?.stop();
  svc?.db.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('HEAD answers (decision 1662)', () => {
  it('a result: GET inlines the output; HEAD sends headers only, after the same checks', async () => {
    const get = (await svc.result(JOB, recorder().res)) as { outputs: { sealed?: string }[] };
    expect(get.outputs[0]!.sealed).toBe(output.toString('base64'));
    const { r, res } = recorder();
    expect(await svc.result(JOB, res, true)).toBeUndefined();
    expect(r).toMatchObject({ status: 200, body: [], ended: true });
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    await expect(svc.result(`0x${'00'.repeat(32)}`, recorder().res, true)).rejects.toThrow(/no such job/);
  });

  it('an event stream: HEAD sends headers only and takes no stream place', async () => {
    (svc.node as unknown as { limits: { maxEventStreamsPerIp: number } }).limits = {
      maxEventStreamsPerIp: 1,
    };
    const req = Object.assign(Readable.from([]), {
      headers: {},
      socket: { remoteAddress: '2001:db8::1', setTimeout: () => undefined },
    }) as unknown as IncomingMessage;
    const { r, res } = recorder();
    await svc.stream(JOB, req, res, new URL('http://node/x'), true);
    expect(r).toMatchObject({ status: 200, body: [], ended: true });
    expect(r.headers['content-type']).toBe('text/event-stream');
    // One place per client: the HEAD above (whose request never closes here) took none, so a GET
    // still gets it and replays the event and the end.
    const get = recorder();
    await svc.stream(JOB, req, get.res, new URL('http://node/x'));
    expect(get.r.status).toBe(200);
    expect(get.r.body.join('')).toMatch(/event: progress[\s\S]*event: end/);
  });
});
