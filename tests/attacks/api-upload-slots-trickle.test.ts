import { createHash, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { type Hex, hexBytes } from '@firn/core';
import { addressOf, signDigest, uploadIntentDigest } from '@firn/crypto';
import { bytesToHex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestScope, startTestNetwork, type TestNetwork } from '../e2e/network.ts';

// A stranger holding four funded addresses (1 wei each is enough: the node checks balance > 0)
// and two source addresses in different /24s starts eight uploads of 1 GiB each and trickles their
// bodies at 8 KiB/s, just above the body-rate floor (64 KiB per 10 s window, DEFAULT_HTTP_LIMITS).
// Each takes an upload slot (2 per address, 4 per /24, 8 in all: UploadSlots in http/limits.ts)
// and keeps it for as long as the body takes, ~36 hours at that rate (decision: "a 2 GiB upload
// may take up to 91 hours"); every other requester's upload is answered 429 meanwhile, so no new
// job can be given its inputs. The attack costs 64 KiB/s of bandwidth. The slots are
// first-come-first-held: nothing takes one back from the slowest holder when others wait.

let net: TestNetwork;
const sockets: Socket[] = [];

beforeAll(async () => {
  net = await startTestNetwork();
}, 180_000);

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await net?.stop();
  if (net?.dataDir) rmSync(net.dataDir, { recursive: true, force: true });
});

function intentHeaders(key: Hex, id: Hex, size: number): string {
  const k = hexBytes(key, 'key', 32);
  const intent = {
    uploader: addressOf(k),
    artifactId: id,
    size,
    expiresAt: Math.floor(Date.now() / 1000) + 1800,
  };
  const sig = bytesToHex(signDigest(k, uploadIntentDigest(requestScope(net), intent)));
  return (
    `x-firn-uploader: ${intent.uploader}\r\nx-firn-artifact-id: ${id}\r\n` +
    `x-firn-intent-expires: ${intent.expiresAt}\r\nx-firn-signature: ${sig}\r\n`
  );
}

/** Start a PUT /v1/artifacts of `size` bytes from `localAddress` and trickle its body. */
function trickle(port: number, localAddress: string, key: Hex): { status: () => number | undefined } {
  const size = 1024 ** 3;
  const id = `0x${randomBytes(32).toString('hex')}` as Hex;
  let status: number | undefined;
  const s = connect({ host: '127.0.0.1', port, localAddress });
  sockets.push(s);
  s.on('error', () => undefined);
  s.on('data', (d) => {
    status ??= Number(/^HTTP\/1\.1 (\d{3})/.exec(d.toString('latin1'))?.[1]);
  });
  s.write(
    `PUT /v1/artifacts HTTP/1.1\r\nhost: node\r\ncontent-type: application/octet-stream\r\n` +
      `content-length: ${size}\r\n${intentHeaders(key, id, size)}\r\n`,
  );
  const t = setInterval(() => {
    if (s.destroyed) return clearInterval(t);
    s.write(Buffer.alloc(8 * 1024));
  }, 1000);
  t.unref();
  return { status: () => status };
}

describe('attack: eight trickled uploads hold every upload slot', () => {
  it('another requester can still upload a small input while they trickle', async () => {
    const port = Number(new URL(net.node.url).port);
    const keys = net.anvil.accounts.filter(
      (a) => a.address !== net.requester.address && a.address !== net.operator.address,
    );
    expect(keys.length).toBeGreaterThanOrEqual(4);
    const held = [
      ...[0, 0, 1, 1].map((i) => trickle(port, '127.0.0.1', keys[i]!.privateKey)),
      ...[2, 2, 3, 3].map((i) => trickle(port, '127.0.1.1', keys[i]!.privateKey)),
    ];
    // Past the body-rate grace (10 s) and two rate windows: the trickles are still admitted.
    await new Promise((r) => setTimeout(r, 25_000));
    expect(held.map((h) => h.status())).toEqual(Array(8).fill(undefined));

    const body = randomBytes(4096);
    const id = `0x${createHash('sha256').update(body).digest('hex')}` as Hex;
    const r = await new Promise<{ status: number; text: string }>((resolve) => {
      const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.2.1' });
      let out = '';
      s.on('data', (d) => {
        out += d.toString('latin1');
      });
      s.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1]), text: out }));
      s.on('error', () => undefined);
      s.write(
        `PUT /v1/artifacts HTTP/1.1\r\nhost: node\r\nconnection: close\r\ncontent-type: application/octet-stream\r\n` +
          `content-length: ${body.length}\r\n${intentHeaders(net.requester.privateKey, id, body.length)}\r\n`,
      );
      s.write(body);
    });
    expect(r.status, r.text.slice(-300)).toBe(201);
  }, 120_000);
});
