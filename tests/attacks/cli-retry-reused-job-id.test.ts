import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  type AnvilInstance,
  createFirnClients,
  type FirnClients,
  type FirnDeployment,
  getJob,
  getWithdrawable,
  JobStatus,
  postJob,
  reclaimJob,
  startAnvil,
} from '@firn/chain';
import type { FirnError, Hex } from '@firn/core';
import { keccak256, toHex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobRetry } from '../../packages/cli/src/commands/job.ts';
import { jobChainFacts, recordJob } from '../../packages/cli/src/jobJournal.ts';
import { deployJobFirn } from '../../packages/cli/test/jobChain.ts';

// The attack (decision 1650): job ids are keccak256(chain id, market, n), so a fresh devnet (a new
// anvil, the same deployer, the same contract addresses) hands out the same ids again, and the
// requester's journal ($FIRN_HOME/jobs/<jobId>.json) still holds the entry of the earlier chain's
// job. `firn job retry JOBID` took that entry for this chain's job of the same id: it reclaimed a
// job this machine never posted here (posted by another process with the same devnet key) and
// repeated a command that has nothing to do with it. Promise: an entry is used only where the
// chain it names has its post block; otherwise the command refuses before sending anything.
//
// And (decision 1652): retry of a job whose escrow is already a credit in the market (a reclaim
// whose withdraw never ran) left it there: retry now withdraws it and says how much.
const ETH = 10n ** 18n;
const dir = mkdtempSync(join(tmpdir(), 'firn-retry-reused-'));
const home = join(dir, 'home');
let earlier: AnvilInstance;
let fresh: AnvilInstance;
let depEarlier: FirnDeployment;
let depFresh: FirnDeployment;
const keyFile = join(dir, 'requester.key');
const savedHome = process.env['FIRN_HOME'];

const requesterOn = (anvil: AnvilInstance, dep: FirnDeployment): FirnClients =>
  createFirnClients(anvil.rpcUrl, anvil.accounts[2]!.privateKey, dep, { pollingIntervalMs: 50 });

/** The requester (account 2) posts an Open job (escrow 1 ETH); returns its id and where it was posted. */
async function post(c: FirnClients, tag: string) {
  const block = await c.public.getBlock();
  const r = await postJob(c, {
    teeTypeMask: 1 << 1,
    allowedMeasurements: [],
    workloadHash: keccak256(toHex(`${tag}-model`)),
    inputCommitment: keccak256(toHex(`${tag}-inputs`)),
    deadline: block.timestamp + 3600n,
    claimTimeout: 600n,
    escrow: ETH,
  });
  return {
    jobId: r.jobId,
    posted: { txHash: r.hash, blockNumber: r.receipt.blockNumber, blockHash: r.receipt.blockHash },
  };
}

/** Record `jobId` as `firn infer` does (its files are gone, so a rerun stops before the network). */
function record(
  jobId: Hex,
  dep: FirnDeployment,
  requester: Hex,
  posted: Awaited<ReturnType<typeof post>>['posted'],
) {
  expect(
    recordJob({
      jobId,
      command: 'infer',
      options: {
        model: join(dir, 'gone.onnx'),
        input: join(dir, 'gone.json'),
        out: join(dir, 'out.json'),
        escrow: '0.001',
        keyFile,
      },
      postedAt: Math.floor(Date.now() / 1000),
      chain: jobChainFacts(dep, requester, posted),
    }),
  ).toBe(true);
}

/** Run `firn job retry` against `anvil`; its error (if any) and what it said on stderr. */
async function retry(anvil: AnvilInstance, dep: FirnDeployment, jobId: Hex) {
  const stderr = new PassThrough();
  let said = '';
  stderr.on('data', (d) => {
    said += d.toString();
  });
  const err = await jobRetry(
    { rpcUrl: anvil.rpcUrl, deployment: dep } as never,
    jobId,
    {},
    {
      stdout: new PassThrough(),
      stderr,
    },
  ).then(
    () => undefined,
    (e: unknown) => e as FirnError,
  );
  return { err, said };
}

beforeAll(async () => {
  process.env['FIRN_HOME'] = home;
  [earlier, fresh] = await Promise.all([startAnvil({ accounts: 4 }), startAnvil({ accounts: 4 })]);
  const measurement = keccak256(toHex('reused-id-bundle'));
  depEarlier = await deployJobFirn(earlier, measurement);
  depFresh = await deployJobFirn(fresh, measurement);
  writeFileSync(keyFile, `${earlier.accounts[2]!.privateKey}\n`, { mode: 0o600 });
}, 120_000);

afterAll(async () => {
  if (savedHome === undefined) delete process.env['FIRN_HOME'];
  else process.env['FIRN_HOME'] = savedHome;
  await Promise.all([earlier?.stop(), fresh?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

describe('attack: a fresh devnet reuses a journalled job id', () => {
  it("`firn job retry` refuses the earlier chain's entry and sends nothing; this chain's job stays Open", async () => {
    const requester = earlier.accounts[2]!.address as Hex;
    const old = await post(requesterOn(earlier, depEarlier), 'earlier');
    record(old.jobId, depEarlier, requester, old.posted);
    // The restarted devnet: same chain id, same market address, and its first job has the same id.
    const now = await post(requesterOn(fresh, depFresh), 'fresh');
    expect(depFresh.jobMarket).toBe(depEarlier.jobMarket);
    expect(now.jobId).toBe(old.jobId);
    const c = requesterOn(fresh, depFresh);
    const nonce = await c.public.getTransactionCount({ address: requester });
    const { err } = await retry(fresh, depFresh, now.jobId);
    expect(err?.code).toBe('E_CONFLICT');
    expect(err?.message).toMatch(/earlier chain's job with the same id/);
    expect(err?.message).toMatch(/nothing was sent/);
    expect((await getJob(c, now.jobId)).status).toBe(JobStatus.Open);
    expect(await c.public.getTransactionCount({ address: requester })).toBe(nonce);
  }, 60_000);

  it('on the chain the entry names, retry goes ahead: it reclaims and pays the escrow out', async () => {
    const requester = earlier.accounts[2]!.address as Hex;
    const c = requesterOn(earlier, depEarlier);
    const job = await post(c, 'second');
    record(job.jobId, depEarlier, requester, job.posted);
    const before = await c.public.getBalance({ address: requester });
    const { said } = await retry(earlier, depEarlier, job.jobId);
    expect((await getJob(c, job.jobId)).status).toBe(JobStatus.Reclaimed);
    expect(await getWithdrawable(c, 'jobMarket', requester)).toBe(0n);
    expect((await c.public.getBalance({ address: requester })) - before).toBeGreaterThan((ETH * 99n) / 100n);
    expect(said).toMatch(/withdrew 1 ETH of credit from the job market/);
  }, 60_000);
});

describe('`firn job retry` of a job whose escrow is still a credit in the market', () => {
  it('withdraws the credit a reclaim left behind before running the job again, and says so', async () => {
    const requester = earlier.accounts[2]!.address as Hex;
    const c = requesterOn(earlier, depEarlier);
    const job = await post(c, 'stranded');
    record(job.jobId, depEarlier, requester, job.posted);
    // A reclaim whose withdraw never ran (a second Ctrl-C between the two, decision 1630).
    await reclaimJob(c, job.jobId);
    expect(await getWithdrawable(c, 'jobMarket', requester)).toBe(ETH);
    const before = await c.public.getBalance({ address: requester });
    const { err, said } = await retry(earlier, depEarlier, job.jobId);
    // The rerun itself stops at the missing model file; the money is back first.
    expect(err?.message).toMatch(/gone\.onnx/);
    expect(await getWithdrawable(c, 'jobMarket', requester)).toBe(0n);
    expect((await c.public.getBalance({ address: requester })) - before).toBeGreaterThan((ETH * 99n) / 100n);
    expect(said).toMatch(/withdrew 1 ETH of credit from the job market/);
  }, 60_000);
});
