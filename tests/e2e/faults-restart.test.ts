import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { runJob, sealInput } from '@firn/client';
import { type Hex, sharedPath } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, descendants } from '../helpers/processTree.ts';
import type { FaultsNodeConfig } from './faultsNode.ts';
import { waitFor } from './faultsRelay.ts';
import { requesterOptions, startTestNetwork, type TestNetwork } from './network.ts';

// A node host killed with SIGKILL in the middle of a training job, then started again on the same
// data dir: its enclave (and the enclave's ML child) must not outlive it; the restarted node fails
// the job on chain while the claim is valid (so the requester can re-run it at once), serves the
// job's progress events again with their sequence numbers and end marker, and still holds every
// artifact the requester uploaded.
let net: TestNetwork;
let cfg: FaultsNodeConfig;
let host: ChildProcess | undefined;
const hostOut: string[] = [];

function startHost(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/e2e/faultsNode.ts', JSON.stringify(cfg)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`node host did not start: ${hostOut.slice(-5).join('')}`)),
      60_000,
    );
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      hostOut.push(d.toString('utf8'));
      const m = /READY (\S+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]! });
      }
    });
    child.stderr!.on('data', (d: Buffer) => hostOut.push(d.toString('utf8')));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`node host exited (${code}): ${hostOut.slice(-5).join('')}`));
    });
  });
}

beforeAll(async () => {
  net = await startTestNetwork();
  const { bundlePath, enclaveEnv } = net.node.opts;
  cfg = {
    dataDir: net.dataDir,
    bundlePath,
    enclaveEnv,
    port: Number(new URL(net.node.url).port),
    rpcUrl: net.anvil.rpcUrl,
    deployment: { ...net.deployment, deployBlock: net.deployment.deployBlock.toString() },
    operatorKey: net.operator.privateKey,
    scheduler: { chainCheckIntervalMs: 300, finalizeIntervalMs: 1000 },
  };
  // The node becomes its own process with the same identity (data dir, platform, image).
  await net.node.jobs?.drain();
  await net.node.stop();
}, 180_000);

afterAll(async () => {
  if (host && host.exitCode === null) {
    host.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1500));
    host.kill('SIGKILL');
  }
  await net?.stop();
});

describe('a node host killed mid-job and restarted', () => {
  it('leaves no orphan enclave, fails the job on chain after restart, replays its events, keeps the uploads', async () => {
    const a = await startHost();
    host = a.child;
    const kem = await generateKemKeyPair();
    const csv = readFileSync(sharedPath('datasets', 'banknote_authentication.csv'));
    const dataset = await sealInput(new Uint8Array(csv), 'text/csv', kem.publicKey);
    let jobId: Hex | undefined;
    const run = runJob({
      ...requesterOptions(net, kem),
      kind: 'training',
      inputs: [{ role: 'dataset', sealed: dataset }],
      params: {
        task: 'classification',
        hidden: [64, 32],
        epochs: 3000,
        batchSize: 8,
        seed: 1,
        validationSplit: 0.2,
      },
      escrow: 10n ** 15n,
      onPosted: (id) => {
        jobId = id;
      },
    }).then(
      (r) => ({ ok: r }),
      (e: unknown) => ({ err: e }),
    );
    // Training is under way: claimed, running, a few progress events out.
    await waitFor(
      'the job running with progress',
      async () => {
        if (!jobId) return undefined;
        const r = (await (await fetch(`${a.url}/v1/jobs/${jobId}`)).json()) as { status: string };
        return r.status === 'running' ? true : undefined;
      },
      90_000,
    );
    // While the enclave trains, attestation still answers in milliseconds (the ML runtime is a
    // child process, off the enclave's message loop).
    const took: number[] = [];
    for (let i = 0; i < 8; i++) {
      const t0 = performance.now();
      const r = await fetch(`${a.url}/v1/attestation`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ nonce: `0x${randomBytes(32).toString('hex')}` }),
      });
      expect(r.status).toBe(200);
      took.push(performance.now() - t0);
    }
    expect(Math.max(...took)).toBeLessThan(2000);
    const tree = descendants(a.child.pid!);
    expect(tree.length).toBeGreaterThanOrEqual(2); // the enclave and its ML runtime child
    a.child.kill('SIGKILL');
    // No enclave process (nor ML child) outlives its host.
    await waitFor(
      'every enclave process gone',
      () => (tree.every((p) => !alive(p)) ? true : undefined),
      5000,
    );

    const b = await startHost();
    host = b.child;
    const clients = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const record = await waitFor(
      'the job failed on chain by the restarted node',
      async () => {
        const r = (await (await fetch(`${b.url}/v1/jobs/${jobId}`)).json()) as {
          status: string;
          error?: { code: string };
          txs?: Record<string, string>;
        };
        return r.status === 'failed' ? r : undefined;
      },
      30_000,
    );
    expect(record.error?.code).toBe('E_ENCLAVE_UNAVAILABLE');
    expect(record.txs?.fail).toMatch(/^0x[0-9a-f]{64}$/);
    // Failed on chain (the requester's SDK may have reclaimed the escrow right after).
    expect([JobStatus.Failed, JobStatus.Reclaimed]).toContain((await getJob(clients, jobId!)).status);

    // The events the job produced before the crash are served again, in order, with the count.
    const text = await (
      await fetch(`${b.url}/v1/jobs/${jobId}/events`, { signal: AbortSignal.timeout(10_000) })
    ).text();
    const seqs = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    expect(seqs.length).toBeGreaterThan(0);
    expect(seqs).toEqual(seqs.map((_s, i) => i));
    const end = JSON.parse(/event: end\ndata: (.*)\n/.exec(text)![1]!) as { status: string; events: number };
    expect(end).toMatchObject({ status: 'failed', events: seqs.length });

    // What the requester uploaded is still there, byte for byte.
    const stored = new Uint8Array(
      await (await fetch(`${b.url}/v1/artifacts/${dataset.artifactId}`)).arrayBuffer(),
    );
    expect(`0x${createHash('sha256').update(stored).digest('hex')}`).toBe(dataset.artifactId);

    const outcome = await Promise.race([
      run,
      new Promise((r) => setTimeout(() => r({ timeout: true }), 60_000)),
    ]);
    expect(outcome).not.toHaveProperty('ok');
  }, 240_000);
});
