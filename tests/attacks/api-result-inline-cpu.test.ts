import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobService } from '../../packages/node/src/jobs/jobApi.ts';
import { runStorageJob, stubbedJobService } from '../helpers/storageService.ts';
import { type StubNodeApiServer, startStubNodeApi } from '../helpers/stubNodeApiServer.ts';

// A stranger (no key; GETs are not rate limited) asks GET /v1/jobs/{id}/result of a finished job
// with a large output (job ids are on chain; a training job's exported model is megabytes) in a
// loop. For each request the node reads the output whole with readFileSync, base64-encodes it,
// JSON.stringifies the ~11 MB string, measures it and writes it (jobApi.ts result(): outputs up to
// MAX_INLINE_OUTPUT_BYTES = 8 MiB inlined; MAX_INLINE_BYTES_IN_FLIGHT bounds memory, not work),
// all synchronously on the daemon's only thread. A few connections read as fast as they can keep
// that thread busy: every other request, the chain watchers, claims and proofs wait behind.
// Safe outcome: the node's other answers stay prompt while a stranger reads a result (e.g. large
// outputs served by streaming GET /v1/artifacts/{id} only, or inlining under a per-client rate).
const dir = mkdtempSync(join(tmpdir(), 'firn-atk-inline-'));
let api: StubNodeApiServer;
let jobId: string;
let attacker: ChildProcess | undefined;

beforeAll(async () => {
  const now = Math.floor(Date.now() / 1000);
  const svc = stubbedJobService(
    join(dir, 'node'),
    { perAddressBytes: 2 ** 30, totalBytes: 2 ** 31 },
    8 * 1024 * 1024 - 64,
    {
      now: () => now,
    },
  );
  (svc as unknown as Record<string, unknown>).submitKeptProof = async () => undefined;
  const { jobId: id, record } = await runStorageJob(svc, 1, `0x${'55'.repeat(20)}`, [], now);
  jobId = id;
  // Proved on chain: the result is served.
  svc.jobs.put({ ...record, status: 'proved', proof: {} as never });
  api = await startStubNodeApi({ jobs: svc as JobService }, { chain: {} });
}, 60_000);

afterAll(() => {
  attacker?.kill('SIGKILL');
  api?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function probe(ms: number): Promise<number[]> {
  const lat: number[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const t = performance.now();
    await (await fetch(`${api.url}/healthz`)).text();
    lat.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 50));
  }
  return lat.sort((a, b) => a - b);
}

describe('a stranger reads a large result in a loop', () => {
  it("the node's other answers stay prompt (p90 /healthz under 100 ms)", async () => {
    const r = await fetch(`${api.url}/v1/jobs/${jobId}/result`);
    expect(r.status).toBe(200);
    // The result is served: its output inline, or listed for GET /v1/artifacts/{id} (decision 1744).
    const out = ((await r.json()) as { outputs: { artifactId: string; size: number; sealed?: string }[] })
      .outputs[0]!;
    if (out.sealed === undefined) {
      const a = await fetch(`${api.url}/v1/artifacts/${out.artifactId}`, { method: 'HEAD' });
      expect([a.status, Number(a.headers.get('content-length'))]).toEqual([200, out.size]);
    }
    const quiet = await probe(1500);
    // Four connections from another process, each reading answers back to back.
    const script = `const http=require('http');const a=new http.Agent({keepAlive:true,maxSockets:4});
      const go=()=>http.get(process.argv[1],{agent:a},(r)=>{r.resume();r.on('end',go);r.on('error',go)}).on('error',()=>setTimeout(go,10));
      for(let i=0;i<4;i++)go();`;
    attacker = spawn(process.execPath, ['-e', script, `${api.url}/v1/jobs/${jobId}/result`], {
      stdio: 'ignore',
    });
    await new Promise((r) => setTimeout(r, 500));
    const loaded = await probe(4000);
    attacker.kill('SIGKILL');
    const p90 = (l: number[]) => l[Math.floor(l.length * 0.9)]!;
    expect(
      p90(loaded),
      `quiet p90 ${p90(quiet).toFixed(1)} ms, under attack p90 ${p90(loaded).toFixed(1)} ms`,
    ).toBeLessThan(100);
  }, 60_000);
});
