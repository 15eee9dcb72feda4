import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hex } from '@firn/core';
import { NodeApi } from '@firn/client';
import {
  artifactIdOf,
  ENCLAVE_ID,
  storageDeployment,
  storageService,
} from '../../../../tests/helpers/storageService.ts';
import { UploadSlots } from '../http/limits.ts';
import { answerError } from '../http/router.ts';
import { createLogger } from '../logger.ts';
import type { JobService } from './jobApi.ts';

// Decision 1660 on a real socket: an upload evicted for a newcomer is answered 429 naming why,
// its connection closes, and it leaves no temp file and no quota charge behind.

const KEY_A = `0x${'0a'.repeat(32)}` as Hex; // made-up test keys (a repeated byte)
const KEY_B = `0x${'0b'.repeat(32)}` as Hex;
let dir: string;
let svc: JobService;
let server: Server;
let port: number;
const clock = { now: Math.floor(Date.now() / 1000) };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'firn-evict-'));
  svc = storageService(dir, clock, { perAddressBytes: 64 * 1024 ** 2, totalBytes: 128 * 1024 ** 2 });
  // One slot; evictable after 300 ms under 1 MiB/s.
  (svc.node as unknown as { uploadSlots: UploadSlots }).uploadSlots = new UploadSlots(1, 1, 1, {
    minAgeMs: 300,
    keepBytesPerSecond: 1024 * 1024,
  });
  const log = createLogger({}, { write: () => undefined });
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    svc.upload(req, res).catch((e: unknown) => answerError(req, res, e, log, 'PUT /v1/artifacts'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  svc?.stop();
  svc?.db.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function headers(key: Hex, bytes: Uint8Array, declared = bytes.length): string {
  const api = new NodeApi('http://node.invalid', 30_000, {
    requesterKey: key,
    scope: {
      chainId: storageDeployment.chainId,
      jobMarket: storageDeployment.jobMarket,
      enclaveId: ENCLAVE_ID,
    },
    now: () => clock.now,
  });
  const h = { ...api.uploadIntentHeaders(bytes), 'content-length': String(declared) };
  return Object.entries(h)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
}

/** Send a PUT of `bytes` whose first `sendNow` bytes go at once; the answer text and whether it closed. */
function put(key: Hex, bytes: Buffer, sendNow: number, localAddress: string) {
  const s = connect({ host: '127.0.0.1', port, localAddress });
  let text = '';
  s.on('data', (d) => {
    text += d.toString('latin1');
  });
  s.on('error', () => undefined);
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  s.write(
    `PUT /v1/artifacts HTTP/1.1\r\nhost: node\r\nconnection: close\r\ncontent-type: application/octet-stream\r\n${headers(key, bytes)}\r\n`,
  );
  s.write(bytes.subarray(0, sendNow));
  return { socket: s, closed, text: () => text };
}

describe('an upload evicted for a newcomer (decision 1660)', () => {
  it('is answered 429 naming why and closed; the newcomer is stored; nothing of the evicted one stays', async () => {
    const slow = Buffer.alloc(256 * 1024, 1);
    const a = put(KEY_A, slow, 1024, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 600));
    expect(a.text()).toBe('');
    const fast = Buffer.alloc(4096, 2);
    const b = put(KEY_B, fast, fast.length, '127.0.1.1');
    await Promise.all([a.closed, b.closed]);
    expect(a.text()).toMatch(/^HTTP\/1\.1 429 /);
    expect(a.text()).toMatch(/retry-after: 5/i);
    expect(a.text()).toMatch(/"code":"E_RATE_LIMITED".*evicted: the node's 1 upload slots were full/);
    expect(a.socket.destroyed).toBe(true);
    expect(b.text()).toMatch(/^HTTP\/1\.1 201 /);
    expect(svc.artifacts.has(artifactIdOf(fast))).toBe(true);
    expect(svc.artifacts.has(artifactIdOf(slow))).toBe(false);
    // The evicted body's read ends when the server closes its socket: its temp file goes then.
    for (let i = 0; i < 100 && readdirSync(join(dir, 'tmp')).length > 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    expect(svc.quota.total).toBe(4096);
  }, 30_000);
});
