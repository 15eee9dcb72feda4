import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  type AnvilInstance,
  claimJob,
  createFirnClients,
  type FirnClients,
  type FirnDeployment,
  getJob,
  JobStatus,
  postJob,
  startAnvil,
} from '@firn/chain';
import type { Hex } from '@firn/core';
import { keccak256, toHex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployJobFirn, postOpenJob, registerApprovedNode } from '../test/jobChain.ts';
import { deploymentToJson } from './chainArgs.ts';
import { interruptExitCode, jobResultCommand } from './jobInterrupt.ts';

// Decision 1630: a signal to `firn infer|train|run` between posting and writing the result must
// not leave the requester paying for nothing. The guard runs in a real child process (the fixture)
// and gets real signals; the chain is anvil with the real contracts.
const ETH = 10n ** 18n;
const FIXTURE = fileURLToPath(new URL('./jobInterrupt.fixture.mjs', import.meta.url));
let anvil: AnvilInstance;
let deployment: FirnDeployment;
let hung: Server;
const enclaveId = keccak256(toHex('interrupt-enclave'));
const at = (i: number): FirnClients =>
  createFirnClients(anvil.rpcUrl, anvil.accounts[i]!.privateKey, deployment, { pollingIntervalMs: 50 });

beforeAll(async () => {
  // An RPC that accepts and never answers: the chain check on interrupt hangs on it.
  hung = createServer(() => {});
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
  anvil = await startAnvil({ accounts: 6 });
  const measurement = keccak256(toHex('interrupt-bundle'));
  deployment = await deployJobFirn(anvil, measurement);
  await registerApprovedNode(anvil, at, {
    enclaveId,
    measurement,
    endpoint: 'http://127.0.0.1:9',
    tag: 'interrupt',
  });
}, 120_000);

afterAll(async () => {
  hung?.close();
  await anvil?.stop();
});

const openJob = () => postOpenJob(at(2));

/** The fixture holding `jobId` in flight, armed (its handlers installed). */
async function inFlight(jobId: Hex | undefined, rpc = anvil.rpcUrl, sent?: string) {
  const child: ChildProcess = spawn(process.execPath, [FIXTURE], {
    env: {
      ...process.env,
      RPC: rpc,
      DEPLOYMENT: JSON.stringify(deploymentToJson(deployment)),
      KEY: anvil.accounts[2]!.privateKey,
      ...(jobId ? { JOB: jobId } : {}),
      ...(sent ? { SENT: sent } : {}),
    },
  });
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    // Arming loads the CLI's sources: slow on a loaded machine, and not what the tests time.
    const t = setTimeout(() => reject(new Error(`fixture not armed: ${stderr}`)), 90_000);
    child.stdout!.on('data', (d) => {
      if (d.toString().includes('armed')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  return { child, exited, stderr: () => stderr };
}

describe('a signal while a job is in flight', () => {
  it('Ctrl-C while the job is Open reclaims it: the escrow is back with the requester, exit 130', async () => {
    const jobId = await openJob();
    const requester = anvil.accounts[2]!.address;
    const before = await at(2).public.getBalance({ address: requester });
    const p = await inFlight(jobId);
    p.child.kill('SIGINT');
    expect(await p.exited).toBe(130);
    expect((await getJob(at(2), jobId)).status).toBe(JobStatus.Reclaimed);
    // Refunded and withdrawn: the requester holds the escrow again, less the gas of two calls.
    const after = await at(2).public.getBalance({ address: requester });
    expect(after - before).toBeGreaterThan((ETH * 99n) / 100n);
    expect(p.stderr()).toContain(`job ${jobId} was not claimed yet: reclaimed, escrow refunded`);
  }, 120_000);

  it('Ctrl-C once the postJob is sent, before its receipt reached the command, finds the job and reclaims it (decision 1665)', async () => {
    const c = at(2);
    const fromBlock = await c.public.getBlockNumber();
    const block = await c.public.getBlock();
    let hash: Hex | undefined;
    let expectedJobId: Hex | undefined;
    const { jobId } = await postJob(
      c,
      {
        teeTypeMask: 1 << 1,
        allowedMeasurements: [],
        workloadHash: keccak256(toHex('model')),
        inputCommitment: keccak256(toHex('inputs')),
        deadline: block.timestamp + 3600n,
        claimTimeout: 600n,
        escrow: ETH,
      },
      {
        onSent: (h, id) => {
          hash = h;
          expectedJobId = id;
        },
      },
    );
    expect(expectedJobId).toBe(jobId);
    const p = await inFlight(
      undefined,
      anvil.rpcUrl,
      JSON.stringify({ hash, expectedJobId, fromBlock: fromBlock.toString() }),
    );
    p.child.kill('SIGINT');
    expect(await p.exited).toBe(130);
    expect(p.stderr()).toContain(`postJob transaction ${hash} is sent (job ${jobId}`);
    expect((await getJob(c, jobId)).status).toBe(JobStatus.Reclaimed);
    expect(p.stderr()).toContain(`job ${jobId} was not claimed yet: reclaimed, escrow refunded`);
  }, 120_000);

  it('SIGTERM once a node claimed it leaves the job running and prints the `firn job result` command (exit 143)', async () => {
    const jobId = await openJob();
    await claimJob(at(1), { jobId, enclaveId });
    const p = await inFlight(jobId);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(143);
    expect((await getJob(at(2), jobId)).status).toBe(JobStatus.Claimed);
    const cmd = jobResultCommand(jobId, {
      devnet: 'state.json',
      keyFile: 'requester.key',
      out: '/tmp/out.json',
    });
    expect(cmd).toBe(
      `firn job result ${jobId} --devnet state.json --key-file requester.key --out /tmp/out.json.result`,
    );
    expect(p.stderr()).toContain(
      `job ${jobId} is Claimed on its node; fetch and open its result later with:\n  ${cmd}`,
    );
  }, 120_000);

  it('a second signal exits at once while the chain check hangs', async () => {
    const jobId = await openJob();
    const p = await inFlight(jobId, `http://127.0.0.1:${(hung.address() as AddressInfo).port}`);
    p.child.kill('SIGINT');
    // The first one waits on the (hung) chain: still running a second later.
    const first = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r('running'), 1000))]);
    expect(first).toBe('running');
    const t0 = Date.now();
    p.child.kill('SIGINT');
    expect(await p.exited).toBe(130);
    expect(Date.now() - t0).toBeLessThan(5000);
    // Nothing was sent to the real chain: the job is still there to reclaim.
    expect((await getJob(at(2), jobId)).status).toBe(JobStatus.Open);
  }, 120_000);

  it('before the job is posted a signal exits at once, touching no chain (the hung RPC is never asked)', async () => {
    let asked = 0;
    hung.on('request', () => asked++);
    const p = await inFlight(undefined, `http://127.0.0.1:${(hung.address() as AddressInfo).port}`);
    const t0 = Date.now();
    p.child.kill('SIGHUP');
    expect(await p.exited).toBe(129);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(asked).toBe(0);
    expect(p.stderr()).toBe('');
  }, 120_000);

  it('maps signals to the shell’s exit codes', () => {
    expect(interruptExitCode('SIGINT')).toBe(130);
    expect(interruptExitCode('SIGHUP')).toBe(129);
    expect(interruptExitCode('SIGTERM')).toBe(143);
  });
});
