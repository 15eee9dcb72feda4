import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NodeApi } from '@firn/client';
import type { FirnError } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// A hostile node host answers GET /v1/jobs/{id} with a record whose `txs` map has a key that is
// not a transaction purpose: terminal escapes, a line break, and 1 MiB of text. The answer is
// refused (E_PARSE naming the node and the field), but the bad value must never be echoed: not
// into the message the CLI prints, nor into details.

const ID = `0x${'ab'.repeat(32)}`;
const BAD_KEY = `\u001b[2J\u001b[31mE_PROOF_OK\nproof verified ${'A'.repeat(1024 * 1024)}`;
let node: Server;
const url = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;

beforeAll(async () => {
  node = createServer((req, res) => {
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ jobId: ID, status: 'running', txs: { [BAD_KEY]: ID } }));
  });
  await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
});
afterAll(async () => {
  await new Promise((r) => node.close(r));
});

describe('attack: a node answer whose bad field is a record key', () => {
  it('is E_PARSE naming the field, without echoing the key', async () => {
    const e = (await new NodeApi(url(node), 5_000)
      .getJob(ID as `0x${string}`)
      .catch((x: unknown) => x)) as FirnError;
    expect(e.code).toBe('E_PARSE');
    expect(e.message).toContain(url(node));
    expect(e.message).not.toContain('\u001b');
    expect(e.message).not.toContain('proof verified');
    expect(e.message.length).toBeLessThan(1000);
    expect(JSON.stringify(e.details)).not.toContain('proof verified');
  });
});
