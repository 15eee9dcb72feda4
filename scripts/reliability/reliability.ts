/**
 * Reliability run of one node on 127.0.0.1: a bounded load phase and a chaos phase, printing figures.
 *
 *   npm run reliability -- [--load-seconds 20] [--clients 50] [--skip-chaos] [--skip-load]
 *
 * Load: `--clients` concurrent clients for `--load-seconds` against GET /healthz, GET /v1/node and
 * POST /v1/attestation (fresh nonce each), while confidential inference jobs run through the market;
 * then attestation latency while a training job runs in the enclave. Prints requests, errors,
 * p50/p95/p99 latency and the host's RSS before and after.
 *
 * Chaos (each fault is injected for real, then the node is checked to recover):
 *   1. the enclave process is SIGKILLed: time until /healthz is 200 again, a job afterwards;
 *   2. anvil is frozen (SIGSTOP) during a training job, then resumed (SIGCONT): /healthz 503 and new
 *      jobs refused during the outage, the finished proof kept and submitted after it;
 *   3. the data disk fills up (a 24 MiB tmpfs; needs root, skipped otherwise): uploads get 507, the
 *      node keeps serving and starts again on the full disk.
 * Exit code 1 when any check failed.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { NodeApi, type RunJobOptions, runJob, sealInput } from '@firn/client';
import { bytesToHex, type Hex, sharedPath } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { createLogger, NodeDaemon } from '@firn/node';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { requestScope, startTestNetwork, type TestNetwork } from '../../tests/e2e/network.ts';

const args = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const LOAD_SECONDS = flag('--load-seconds', 20);
const CLIENTS = flag('--clients', 50);
const failures: string[] = [];
const check = (ok: boolean, what: string) => {
  if (!ok) failures.push(what);
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
};
const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const ms = (x: number) => `${x.toFixed(1)} ms`;
const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

async function waitFor<T>(f: () => Promise<T | undefined>, msMax: number): Promise<T | undefined> {
  const end = Date.now() + msMax;
  while (Date.now() < end) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch {}
    await sleep(100);
  }
  return undefined;
}

let net: TestNetwork;
let node: NodeDaemon;
let kem: { privateKey: Uint8Array; publicKey: Uint8Array };
const model = tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 11 });
const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));

function base(extra: Partial<RunJobOptions>): RunJobOptions {
  return {
    rpcUrl: net.anvil.rpcUrl,
    deployment: net.deployment,
    requesterKey: net.requester.privateKey,
    requesterKem: kem,
    policy: net.policy,
    roots: net.roots,
    kind: 'inference',
    inputs: [
      { role: 'model', bytes: model.bytes, contentType: 'application/onnx' },
      {
        role: 'input',
        bytes: enc({ x: { dims: [1, 3], type: 'float32', data: [1, 2, 3] } }),
        contentType: 'application/json',
      },
    ],
    params: {},
    escrow: 10n ** 15n,
    ...extra,
  } as RunJobOptions;
}

async function training(epochs: number, extra: Partial<RunJobOptions> = {}): Promise<RunJobOptions> {
  const csv = readFileSync(sharedPath('datasets', 'banknote_authentication.csv'));
  const dataset = await sealInput(new Uint8Array(csv), 'text/csv', kem.publicKey);
  return base({
    kind: 'training',
    inputs: [{ role: 'dataset', sealed: dataset }],
    params: {
      task: 'classification',
      hidden: [32, 16],
      epochs,
      batchSize: 16,
      seed: 2,
      validationSplit: 0.2,
    },
    ...extra,
  });
}

async function timed(f: () => Promise<Response>): Promise<{ ok: boolean; status: number; t: number }> {
  const t0 = performance.now();
  try {
    const r = await f();
    await r.arrayBuffer();
    return { ok: r.status < 500, status: r.status, t: performance.now() - t0 };
  } catch {
    return { ok: false, status: 0, t: performance.now() - t0 };
  }
}

const attest = () =>
  fetch(`${node.url}/v1/attestation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ nonce: bytesToHex(randomBytes(32)) }),
  });

async function loadPhase(): Promise<void> {
  console.log(`\nload: ${CLIENTS} clients for ${LOAD_SECONDS} s on ${node.url}`);
  const rss0 = process.memoryUsage().rss;
  const lat: number[] = [];
  const attLat: number[] = [];
  let errors = 0;
  // Refused by the node's per-client rates (all clients share one address here; decision 1761).
  let limited = 0;
  let n = 0;
  const end = Date.now() + LOAD_SECONDS * 1000;
  const client = async (i: number) => {
    while (Date.now() < end) {
      const which = (n + i) % 3;
      const r = await timed(() =>
        which === 0 ? fetch(`${node.url}/healthz`) : which === 1 ? fetch(`${node.url}/v1/node`) : attest(),
      );
      n++;
      (which === 2 ? attLat : lat).push(r.t);
      if (!r.ok) errors++;
      if (r.status === 429) limited++;
    }
  };
  // Jobs through the market at the same time.
  let jobsOk = 0;
  let jobsFailed = 0;
  const jobs = (async () => {
    while (Date.now() < end) {
      try {
        await runJob(base({}));
        jobsOk++;
      } catch {
        jobsFailed++;
      }
    }
  })();
  await Promise.all([...Array.from({ length: CLIENTS }, (_v, i) => client(i)), jobs]);
  const rss1 = process.memoryUsage().rss;
  console.log(
    `  requests ${n} (${(n / LOAD_SECONDS).toFixed(0)}/s), errors (5xx or network) ${errors}, 429 (per-client rates) ${limited}`,
  );
  console.log(
    `  healthz/node latency p50 ${ms(pct(lat, 50))} p95 ${ms(pct(lat, 95))} p99 ${ms(pct(lat, 99))}`,
  );
  console.log(
    `  attestation latency p50 ${ms(pct(attLat, 50))} p95 ${ms(pct(attLat, 95))} p99 ${ms(pct(attLat, 99))}`,
  );
  console.log(`  inference jobs through the market: ${jobsOk} ok, ${jobsFailed} failed`);
  console.log(`  runner RSS (node, enclave client and load in one process) ${mib(rss0)} -> ${mib(rss1)}`);
  check(errors === 0, 'no request failed under load');
  check(jobsFailed === 0 && jobsOk > 0, 'every inference job under load succeeded');

  // Attestation while the enclave trains (the ML runtime is a child process).
  const busy: number[] = [];
  let trainDone = false;
  const train = runJob(await training(60)).finally(() => {
    trainDone = true;
  });
  await sleep(1500);
  while (!trainDone && busy.length < 200) {
    const r = await timed(attest);
    busy.push(r.t);
    if (!r.ok) errors++;
  }
  await train;
  console.log(
    `  attestation during training: ${busy.length} answers, p50 ${ms(pct(busy, 50))} p95 ${ms(pct(busy, 95))} max ${ms(Math.max(...busy))}`,
  );
  check(pct(busy, 95) < 1000, 'attestation answers within a second (p95) while a job trains');
}

async function chaosEnclave(): Promise<void> {
  console.log('\nchaos 1: SIGKILL the enclave process');
  const pid = node.supervisor.pid!;
  const t0 = performance.now();
  process.kill(pid, 'SIGKILL');
  await sleep(50);
  const back = await waitFor(
    async () => ((await fetch(`${node.url}/healthz`)).status === 200 ? true : undefined),
    30_000,
  );
  console.log(
    `  healthz 200 again after ${ms(performance.now() - t0)} (new enclave pid ${node.supervisor.pid})`,
  );
  check(back === true, 'the enclave came back by itself');
  const r = await runJob(base({})).then(
    () => true,
    () => false,
  );
  check(r, 'a job after the enclave crash succeeds');
}

async function chaosAnvil(): Promise<void> {
  console.log('\nchaos 2: freeze anvil (SIGSTOP) during a training job, resume after 6 s');
  let jobId: Hex | undefined;
  let frozenAt = 0;
  const run = runJob(
    await training(30, {
      onPosted: (id) => {
        jobId = id;
      },
      onProgress: () => {
        if (frozenAt === 0) {
          frozenAt = performance.now();
          process.kill(net.anvil.pid, 'SIGSTOP');
        }
      },
    }),
  ).then(
    () => true,
    () => false,
  );
  await waitFor(async () => (frozenAt > 0 ? true : undefined), 60_000);
  const h503 = await waitFor(
    async () => ((await fetch(`${node.url}/healthz`)).status === 503 ? true : undefined),
    20_000,
  );
  console.log(`  healthz 503 after ${ms(performance.now() - frozenAt)}`);
  check(h503 === true, '/healthz reports the chain down (503)');
  const api = new NodeApi(node.url, 10_000, {
    requesterKey: net.requester.privateKey,
    scope: requestScope(net),
  });
  const body = {
    jobId: bytesToHex(randomBytes(32)),
    enc: bytesToHex(randomBytes(32)),
    ciphertext: 'AAAA',
    inputs: [bytesToHex(randomBytes(32))],
  };
  const refused = await fetch(`${node.url}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...api.submissionHeaders('POST /v1/jobs', body) },
    body: JSON.stringify(body),
  });
  check(refused.status === 503, `a new job is refused while the chain is down (${refused.status})`);
  const proving = await waitFor(
    async () => (jobId && node.jobs?.jobs.get(jobId)?.status === 'proving' ? true : undefined),
    60_000,
  );
  check(proving === true, 'the finished proof is kept (proving) during the outage');
  await sleep(Math.max(0, 6000 - (performance.now() - frozenAt)));
  process.kill(net.anvil.pid, 'SIGCONT');
  const resumedAt = performance.now();
  const ok = await run;
  console.log(
    `  job result ${ok ? 'ok' : 'FAILED'} ${ms(performance.now() - resumedAt)} after the chain came back`,
  );
  check(ok, 'the job finished after the outage');
  const status = (await getJob(createFirnClients(net.anvil.rpcUrl, undefined, net.deployment), jobId!))
    .status;
  check(
    status === JobStatus.Proved || status === JobStatus.Paid,
    `the proof is on chain (${JobStatus[status]})`,
  );
}

async function chaosDisk(): Promise<void> {
  console.log('\nchaos 3: fill the data disk (24 MiB tmpfs)');
  const disk = mkdtempSync(join(tmpdir(), 'firn-reliability-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', disk], { stdio: 'ignore' });
  } catch {
    console.log('  skipped: mounting a tmpfs needs root');
    return;
  }
  let n2: NodeDaemon | undefined;
  try {
    // The same node identity on the small disk (sealed keys copied; the old API is stopped).
    const port = Number(new URL(node.url).port);
    await node.jobs?.drain();
    await node.stop();
    const dir = join(disk, 'node');
    mkdirSync(dir);
    for (const f of ['sealed-keys.json', 'sealed-state.json'])
      if (existsSync(join(net.dataDir, f))) copyFileSync(join(net.dataDir, f), join(dir, f));
    const make = () =>
      new NodeDaemon({
        dataDir: dir,
        bundlePath: net.node.opts.bundlePath,
        enclaveEnv: net.node.opts.enclaveEnv,
        port,
        logger: createLogger({ component: 'node' }, { write: () => undefined }),
        chain: { rpcUrl: net.anvil.rpcUrl, deployment: net.deployment, operatorKey: net.operator.privateKey },
        quotas: { perAddressBytes: 1024 ** 3, totalBytes: 1024 ** 3 },
        limits: { mutatingRequestsPerSecondPerIp: 1000 },
      });
    n2 = make();
    await n2.start();
    const api = new NodeApi(n2.url, 30_000, {
      requesterKey: net.requester.privateKey,
      scope: requestScope(net),
    });
    const statuses: Record<number, number> = {};
    for (let i = 0; i < 40; i++) {
      const bytes = randomBytes(1024 * 1024);
      const r = await fetch(`${n2.url}/v1/artifacts`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', ...api.uploadIntentHeaders(bytes) },
        body: bytes,
      }).catch(() => undefined);
      const s = r?.status ?? 0;
      statuses[s] = (statuses[s] ?? 0) + 1;
      await r?.arrayBuffer().catch(() => undefined);
      if (s === 507 && statuses[507]! >= 3) break;
    }
    console.log(`  upload answers by status: ${JSON.stringify(statuses)}`);
    check(
      (statuses[507] ?? 0) > 0 && !statuses[500] && !statuses[0],
      'a full disk answers 507, never 500 or a dropped connection',
    );
    check((await fetch(`${n2.url}/v1/node`)).status === 200, 'the node keeps serving on a full disk');
    await n2.stop();
    n2 = make();
    const started = await n2.start().then(
      () => true,
      () => false,
    );
    check(started, 'the node starts again on the full disk');
  } finally {
    await n2?.stop().catch(() => undefined);
    execFileSync('umount', [disk]);
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  console.log('starting a devnet (anvil, contracts, verifiers, one node on the simulated TEE)...');
  net = await startTestNetwork({ challengeWindow: 30 });
  node = net.node;
  kem = await generateKemKeyPair();
  console.log(`  up in ${ms(performance.now() - t0)}`);
  try {
    if (!args.includes('--skip-load')) await loadPhase();
    if (!args.includes('--skip-chaos')) {
      await chaosEnclave();
      await chaosAnvil();
      await chaosDisk();
    }
  } finally {
    try {
      process.kill(net.anvil.pid, 'SIGCONT');
    } catch {}
    await net.stop().catch(() => undefined);
  }
  console.log(
    `\n${failures.length === 0 ? 'all checks passed' : `${failures.length} check(s) failed:\n  ${failures.join('\n  ')}`}`,
  );
  process.exit(failures.length === 0 ? 0 : 1);
}

void main();
