import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createFirnClients, firnJobMarketAbi, getJob, JobStatus } from '@firn/chain';
import type { Hex } from '@firn/core';
import { keccak256, parseEventLogs } from 'viem';
import { describe, expect, it } from 'vitest';
import { inferArgs } from '../helpers/cliInferDevnet.ts';
import { FIRN, setupCliInferOverProxy } from './cliInferOverProxy.ts';

// Decision 1760 (amends 1747). `firn infer` without --kem-key seals its result to a key derived
// from the requester key and a fresh salt. Before, the job's journal entry (the salt, the job,
// the command to retry) was written only once eth_sendRawTransaction ANSWERED with a hash. Here the
// RPC takes the signed postJob transaction (it reaches anvil and is mined: the escrow is paid) and
// then:
// - drops the answer (a 502 from a load balancer after forwarding, each of viem's tries): the CLI
//   fails with the chain error; or
// - never answers, and the process is killed meanwhile (a closed laptop, an OOM kill).
// Either way no journal entry named the paid job: `firn job list` showed it from the chain, but
// `firn job retry` refused it ("no local record"), so the only way to get the result was to pay
// again, and the salt sat in an anonymous reservation file. Safe outcome: one command later the
// job is found from this machine's journal and its result is opened (`firn job retry` reclaims
// the escrow and runs the same command again); `firn job result` says what the job waits for.
let mode: 'drop' | 'hold' | 'pass' = 'pass';
const sent: Hex[] = [];
const s = setupCliInferOverProxy('noanswer', (m, ctx) => {
  if (m.method !== 'eth_sendRawTransaction' || mode === 'pass') return undefined;
  sent.push(keccak256(m.params![0] as Hex));
  // The RPC takes it (anvil mines it), then its answer is lost.
  const through = ctx.forward(m);
  if (mode === 'hold') return through.then(() => new Promise(() => {}));
  return through.then(() => Promise.reject(new Error('answer dropped')));
});

/** `firn <args>` in the test's folder, over the proxy; resolves with its exit code and output. */
function firn(args: string[], timeoutMs: number): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [FIRN, ...args], { cwd: s.dir, env: s.env });
    let output = '';
    c.stdout.on('data', (d) => {
      output += d.toString();
    });
    c.stderr.on('data', (d) => {
      output += d.toString();
    });
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (status) => {
      clearTimeout(t);
      resolve({ status, output });
    });
  });
}

/** The job the first postJob transaction the proxy saw posted, read from anvil. */
async function postedJob(): Promise<Hex> {
  const reader = createFirnClients(s.net.anvil.rpcUrl, undefined, s.net.deployment);
  const receipt = await reader.public.waitForTransactionReceipt({ hash: sent[0]!, timeout: 30_000 });
  const [ev] = parseEventLogs({ abi: firnJobMarketAbi, eventName: 'JobPosted', logs: receipt.logs });
  expect(ev, 'the postJob transaction whose answer was lost was mined').toBeDefined();
  const jobId = ev!.args.jobId;
  expect((await getJob(reader, jobId)).status, 'its escrow is paid').toBe(JobStatus.Open);
  return jobId;
}

/** After the lost answer: the result is opened by one command, and the paid escrow comes back. */
async function recover(jobId: Hex, out: string, why: string): Promise<void> {
  mode = 'pass';
  const stateArgs = ['--devnet', s.stateFile];
  const told = await firn(['job', 'result', jobId, ...stateArgs, '--out', join(s.dir, `${out}-r`)], 60_000);
  expect(told.status, told.output).toBe(3);
  expect(told.output).toContain('E_CONFLICT');
  expect(told.output).toContain(`firn job retry ${jobId}`);
  const retry = await firn(['job', 'retry', jobId, ...stateArgs], 150_000);
  expect(retry.status, `${why}\n--- retry:\n${retry.output}`).toBe(0);
  const opened = JSON.parse(readFileSync(join(s.dir, out), 'utf8')) as Record<string, unknown>;
  expect(Object.keys(opened).length, 'the opened outputs').toBeGreaterThan(0);
  const reader = createFirnClients(s.net.anvil.rpcUrl, undefined, s.net.deployment);
  expect((await getJob(reader, jobId)).status, 'the lost post was refunded').toBe(JobStatus.Reclaimed);
  // Nothing of the lost post is left to keep: its record moved to the real id, its salt's
  // reservation is gone.
  const left = readdirSync(join(s.env['FIRN_HOME']!, 'jobs')).filter((f) => f.startsWith('result-key-'));
  expect(left).toEqual([]);
}

describe('attack: the RPC takes the paying postJob transaction and its answer is lost', () => {
  it('an answer dropped: the CLI names the failure, then one command finds the paid job and opens its result', async () => {
    mode = 'drop';
    sent.length = 0;
    const r = await firn(inferArgs(s.stateFile, 'drop.json'), 120_000);
    expect(r.status, r.output).not.toBe(0);
    expect(r.output).toMatch(/error: E_UNAVAILABLE/);
    expect(r.output).toMatch(/may have reached the chain/);
    const jobId = await postedJob();
    expect(existsSync(join(s.dir, 'drop.json'))).toBe(false);
    await recover(jobId, 'drop.json', r.output);
  }, 360_000);

  it('the process killed while the send waits for its answer: the same command recovers it', async () => {
    mode = 'hold';
    sent.length = 0;
    const c = spawn(process.execPath, [FIRN, ...inferArgs(s.stateFile, 'kill.json')], {
      cwd: s.dir,
      env: s.env,
    });
    let output = '';
    c.stderr.on('data', (d) => {
      output += d.toString();
    });
    const exited = new Promise((r) => c.on('close', r));
    const t0 = Date.now();
    while (sent.length === 0 && Date.now() - t0 < 90_000 && c.exitCode === null)
      await new Promise((r) => setTimeout(r, 50));
    expect(sent.length, output).toBe(1);
    // Wait until anvil has it, then the process dies before any answer.
    const jobId = await postedJob();
    c.kill('SIGKILL');
    await exited;
    await recover(jobId, 'kill.json', output);
  }, 360_000);
});
