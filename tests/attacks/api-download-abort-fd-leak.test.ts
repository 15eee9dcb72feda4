import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';

// A stranger on the node API starts a download (GET /v1/artifacts/{id}: no signature, no rate
// limit) of a stored artifact and hangs up after the first bytes. JobService.download
// (packages/node/src/jobs/jobApi.ts) pipes a file read stream into the response and resolves on the
// response's 'close', but legacy pipe() only unpipes (and pauses) the source when the destination
// closes: the ReadStream is never destroyed, so its file descriptor and its 64 KiB read buffer stay
// for the life of the process. Every aborted download leaks one fd; a loop of them exhausts the
// node's descriptors (then no upload, job output, database write or connection can be opened) and
// its memory. Any stored artifact will do: an input of any job (job records are public), or one the
// attacker uploaded itself from any funded address (2 GiB at most, downloaded again and again).

let net: TestNetwork;
let artifactPath: string;
let id: string;

beforeAll(async () => {
  net = await startTestNetwork();
  // A stored 32 MiB artifact (what an upload leaves: the bytes under their SHA-256).
  const bytes = Buffer.alloc(32 * 1024 * 1024, 7);
  const hex = createHash('sha256').update(bytes).digest('hex');
  id = `0x${hex}`;
  artifactPath = join(net.dataDir, 'artifacts', hex);
  writeFileSync(artifactPath, bytes, { mode: 0o600 });
}, 180_000);

afterAll(async () => {
  await net?.stop();
  if (net?.dataDir) rmSync(net.dataDir, { recursive: true, force: true });
});

/** This process's (the node's) open descriptors on the artifact's file. */
const openOnArtifact = () =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === artifactPath;
    } catch {
      return false;
    }
  }).length;

/** Start a download, read its first chunk, hang up. */
function abortedDownload(port: number): Promise<number> {
  return new Promise((resolve) => {
    const q = request({ host: '127.0.0.1', port, path: `/v1/artifacts/${id}`, agent: false }, (res) => {
      res.once('data', () => {
        res.destroy();
        q.destroy();
        resolve(res.statusCode ?? 0);
      });
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    q.on('error', () => resolve(0));
    q.end();
  });
}

describe('attack: downloads a stranger hangs up on', () => {
  it('an aborted download gives its file descriptor back: after 100 of them none is open on the artifact', async () => {
    const port = Number(new URL(net.node.url).port);
    for (let i = 0; i < 100; i++) expect(await abortedDownload(port)).toBe(200);
    await new Promise((r) => setTimeout(r, 1500));
    const open = openOnArtifact();
    expect(open, `${open} descriptors on the artifact still open after 100 aborted downloads`).toBe(0);
  }, 120_000);

  it('a HEAD request reads no artifact from disk (HEAD is the GET handler; its body is discarded)', async () => {
    const port = Number(new URL(net.node.url).port);
    const rchar = () => Number(/rchar: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))![1]);
    const before = rchar();
    for (let i = 0; i < 8; i++) {
      const status = await new Promise<number>((resolve) => {
        const q = request(
          { host: '127.0.0.1', port, method: 'HEAD', path: `/v1/artifacts/${id}`, agent: false },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        q.on('error', () => resolve(0));
        q.end();
      });
      expect(status).toBe(200);
    }
    await new Promise((r) => setTimeout(r, 1500));
    const read = rchar() - before;
    // Eight HEADs of a 32 MiB artifact: a few KiB of request bytes, 256 MiB read from disk.
    expect(read, `${read} bytes read by the node for 8 HEAD requests`).toBeLessThan(4 * 1024 * 1024);
  }, 120_000);
});
