import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FirnError } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionStream } from '../../packages/client/src/sessionStream.ts';

// A hostile node host refuses the session stream's upgrade with a body whose "code" is not an
// error code: it starts with E_ but carries terminal escapes and a line break. Every refusal body
// of a node is schema-checked (decision 1560: {error: {code: E_…, message?}}); one that does not
// fit is E_UNAVAILABLE naming the status, never a FirnError whose code is the node's text.

const ID = `0x${'cd'.repeat(32)}` as const;
let node: Server;
const url = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;

beforeAll(async () => {
  node = createServer((req, res) => {
    req.resume();
    res.statusCode = 403;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ error: { code: 'E_\u001b[2J\nproof verified', message: { x: 1 } } }));
  });
  await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
});
afterAll(async () => {
  await new Promise((r) => node.close(r));
});

describe('attack: a malformed refusal of the session stream upgrade', () => {
  it("is not taken as the node's typed error", async () => {
    const e = (await SessionStream.open(url(node), ID, 1024, undefined, 5_000).catch(
      (x: unknown) => x,
    )) as FirnError;
    expect(e.code).toMatch(/^E_[A-Z0-9_]{1,48}$/);
    expect(e.message).not.toContain('\u001b');
    expect(e.message).not.toContain('[object Object]');
  });
});
