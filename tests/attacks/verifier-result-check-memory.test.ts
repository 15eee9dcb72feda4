import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import { type FirnJob, JobStatus } from '@firn/chain';
import { computeOutputCommitment, type Hex } from '@firn/core';
import { artifactId } from '@firn/crypto';
import { checkResultAvailable, MAX_RESULT_JSON_BYTES, ProofChecker } from '@firn/verifier';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type NodeFacingChain,
  registerNodeAt,
  serveHttp,
  startNodeFacingChain,
} from '../helpers/nodeFacingChain.ts';

// A node makes a verifier hold far more than it sends (docs/decisions/1832-node-facing-fetches.md).
// The result check of every Work Proof downloaded each output with every chunk kept, then
// concatenated, only to SHA-256 it: 1 GiB per output by default, 64 outputs per result, and every
// proved job checked at once and again every 2 s. fetch inflates a gzip answer, so 127 KiB on the
// wire was 128 MiB here. Now a body that is only hashed is asked for uncompressed (a compressed
// answer is refused unread) and hashed as it arrives; the result JSON is capped at what an honest
// node sends; and result checks run a few at a time, in all and per node.

const LOCAL = { allowPrivateEndpoints: true };
const MiB = 1024 * 1024;

let chain: NodeFacingChain;
const servers: { close(): Promise<void> }[] = [];
beforeAll(async () => {
  chain = await startNodeFacingChain();
}, 120_000);
afterAll(async () => {
  for (const s of servers) await s.close();
  await chain?.anvil.stop();
});

// A full collection before each measurement, so garbage an earlier test left is not counted as
// freed during this one (the runner does not start Node with --expose-gc).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** The most ArrayBuffer memory (over the level before) held while `run` runs, MiB. */
async function peakHeldMiB<T>(run: () => Promise<T>): Promise<{ value: T; heldMiB: number }> {
  // Twice, a moment apart: freed ArrayBuffer memory is returned after the collection that found it.
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gc();
  const base = process.memoryUsage().arrayBuffers;
  let peak = base;
  const sampler = setInterval(() => {
    const a = process.memoryUsage().arrayBuffers;
    if (a > peak) peak = a;
  }, 5);
  try {
    const value = await run();
    return { value, heldMiB: Math.round((peak - base) / MiB) };
  } finally {
    clearInterval(sampler);
  }
}

/** A node serving `outputs` as its result and `artifact` for every GET /v1/artifacts/{id}. */
async function nodeServing(outputs: unknown[], artifact: (res: ServerResponse) => void) {
  const node = await serveHttp((req, res) => {
    if (req.url?.endsWith('/result')) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ outputs }));
      return;
    }
    artifact(res);
  });
  servers.push(node);
  return { node, enclaveId: (await registerNodeAt(chain, node.url)).enclaveId };
}

/** Send `total` zero bytes in 64 KiB pieces, as fast as the reader takes them (backpressure). */
function sendZeros(res: ServerResponse, total: number): void {
  const piece = Buffer.alloc(64 * 1024);
  let left = total;
  Readable.from(
    (function* () {
      for (; left > 0; left -= piece.length) yield piece;
    })(),
  ).pipe(res);
}

describe('checking a result never holds an output in memory', () => {
  it('a gzip bomb (128 MiB of zeros in 127 KiB) is refused unread', async () => {
    const outputs = [{ role: 'output', artifactId: `0x${'5a'.repeat(32)}` as Hex }];
    const bomb = gzipSync(Buffer.alloc(128 * MiB), { level: 9 });
    let wire = 0;
    const { enclaveId } = await nodeServing(outputs, (res) => {
      res.setHeader('content-encoding', 'gzip');
      res.setHeader('content-type', 'application/octet-stream');
      wire += bomb.length;
      res.end(bomb);
    });
    const { value: r, heldMiB } = await peakHeldMiB(() =>
      checkResultAvailable(
        chain.gov,
        { jobId: `0x${'01'.repeat(32)}`, enclaveId, outputCommitment: computeOutputCommitment(outputs) },
        LOCAL,
      ),
    );
    expect(r.available).toBe(false);
    expect(heldMiB, `node sent ${Math.round(wire / 1024)} KiB; verifier held ${heldMiB} MiB`).toBeLessThan(
      32,
    );
    expect(r.reason).toContain('content-encoding "gzip"');
  });

  it('a 256 MiB output sent uncompressed is hashed as it arrives', async () => {
    const outputs = [{ role: 'output', artifactId: `0x${'5b'.repeat(32)}` as Hex }];
    const { enclaveId } = await nodeServing(outputs, (res) => {
      res.setHeader('content-type', 'application/octet-stream');
      sendZeros(res, 256 * MiB);
    });
    const { value: r, heldMiB } = await peakHeldMiB(() =>
      checkResultAvailable(
        chain.gov,
        { jobId: `0x${'02'.repeat(32)}`, enclaveId, outputCommitment: computeOutputCommitment(outputs) },
        { ...LOCAL, timeoutMs: 60_000 },
      ),
    );
    // The whole output was read and hashed (and does not hash to the id the node listed)...
    expect(r.reason).toBe('an output does not hash to its id');
    // ...with a few chunks in memory at a time (and what the collector has not freed yet): held
    // whole, it was the output's 256 MiB and its copy.
    expect(heldMiB, `verifier held ${heldMiB} MiB`).toBeLessThan(64);
  });

  it('an honest output streamed in pieces still checks out', async () => {
    const sealed = new Uint8Array(3 * MiB + 17).fill(7);
    const outputs = [{ role: 'output', artifactId: artifactId(sealed) }];
    const { enclaveId } = await nodeServing(outputs, (res) => {
      for (let o = 0; o < sealed.length; o += 64 * 1024) res.write(sealed.subarray(o, o + 64 * 1024));
      res.end();
    });
    expect(
      await checkResultAvailable(
        chain.gov,
        { jobId: `0x${'03'.repeat(32)}`, enclaveId, outputCommitment: computeOutputCommitment(outputs) },
        LOCAL,
      ),
    ).toEqual({ available: true, kind: 'job' });
  });

  it('a result JSON larger than an honest node sends is refused (no longer 64 MiB)', async () => {
    expect(MAX_RESULT_JSON_BYTES).toBeLessThanOrEqual(MiB);
    // Valid inline outputs, padded past the cap with a 2 MiB `response`.
    const sealed = new Uint8Array(100).fill(1);
    const outputs = [
      { role: 'output', artifactId: artifactId(sealed), sealed: Buffer.from(sealed).toString('base64') },
    ];
    const node = await serveHttp((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ outputs, response: 'A'.repeat(2 * MiB) }));
    });
    servers.push(node);
    const { enclaveId } = await registerNodeAt(chain, node.url);
    const r = await checkResultAvailable(
      chain.gov,
      {
        jobId: `0x${'04'.repeat(32)}`,
        enclaveId,
        outputCommitment: computeOutputCommitment(
          outputs.map(({ role, artifactId }) => ({ role, artifactId })),
        ),
      },
      LOCAL,
    );
    expect(r).toMatchObject({ available: false });
    expect(r.reason).toContain('E_TOO_LARGE');
  });
});

describe('result checks run a few at a time', () => {
  it('many proved jobs of two nodes: at most the total and the per-node number of checks at once', async () => {
    // Each node holds every result request 150 ms, counting how many are open at once.
    let open = 0;
    let mostOpen = 0;
    const openByNode = new Map<string, number>();
    const mostByNode = new Map<string, number>();
    const slowNode = async () => {
      const node = await serveHttp(async (_req, res) => {
        const me = String(node.port);
        open++;
        openByNode.set(me, (openByNode.get(me) ?? 0) + 1);
        mostOpen = Math.max(mostOpen, open);
        mostByNode.set(me, Math.max(mostByNode.get(me) ?? 0, openByNode.get(me)!));
        await new Promise((r) => setTimeout(r, 150));
        open--;
        openByNode.set(me, openByNode.get(me)! - 1);
        res.statusCode = 404;
        res.end('{"error":{"code":"E_NOT_FOUND","message":"no result"}}');
      });
      servers.push(node);
      return { node, enclaveId: (await registerNodeAt(chain, node.url)).enclaveId };
    };
    const a = await slowNode();
    const b = await slowNode();
    const checker = new ProofChecker(chain.gov, {
      result: LOCAL,
      maxConcurrentResultChecks: 3,
      maxConcurrentResultChecksPerNode: 2,
    });
    // Proved jobs whose grace is already over: each is checked once, found unavailable and given
    // up on (awaitResult is what handle() runs for each proof once its facts check out).
    const job = (enclaveId: Hex, i: number) =>
      ({
        jobId: `0x${i.toString(16).padStart(64, '0')}`,
        enclaveId,
        status: JobStatus.Proved,
        outputCommitment: `0x${'02'.repeat(32)}`,
        provedAt: 1n,
        challengeEndsAt: 2n,
      }) as unknown as FirnJob;
    const awaitResult = (
      checker as unknown as { awaitResult(jobId: Hex, first: FirnJob): Promise<string | undefined> }
    ).awaitResult.bind(checker);
    const jobs = [
      ...Array.from({ length: 6 }, (_, i) => job(a.enclaveId, i)),
      ...Array.from({ length: 6 }, (_, i) => job(b.enclaveId, 100 + i)),
    ];
    const reasons = await Promise.all(jobs.map((j) => awaitResult(j.jobId, j)));
    expect(reasons.every((r) => r === 'the node answered 404 for the result')).toBe(true);
    expect({ mostOpen, mostPerNode: Math.max(...mostByNode.values()) }).toEqual({
      mostOpen: 3,
      mostPerNode: 2,
    });
    expect(checker.resultSlots.active).toBe(0);
  });
});
