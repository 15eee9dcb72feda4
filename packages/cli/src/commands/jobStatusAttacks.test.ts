import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AnvilInstance,
  createFirnClients,
  type FirnClients,
  type FirnDeployment,
  postJob,
  startAnvil,
} from '@firn/chain';
import type { Hex } from '@firn/core';
import { keccak256, toHex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployJobFirn } from '../../test/jobChain.ts';
import { findJobRecord, journalDir, recordJob } from '../jobJournal.ts';
import { jobStatus } from './job.ts';

// Attacks on `firn job status JOBID` through this machine's job journal: entries that are
// pending, malformed, oversized, from another chain, or naming another account's transaction.
// Each test asserts the expected behaviour: a landed attack is a failing test. Three landed before
// the fix (decision 1760, second amendment): status dropped a pending entry sent on another chain
// (and its result-key salt), and made another account's mined job this machine's, for the asked
// job and through any pending entry on the chain.

const ETH = 10n ** 18n;
let anvil: AnvilInstance;
let deployment: FirnDeployment;
const at = (i: number): FirnClients =>
  createFirnClients(anvil.rpcUrl, anvil.accounts[i]!.privateKey, deployment, { pollingIntervalMs: 50 });
const freshId = () => keccak256(toHex(`${Math.random()}-${Date.now()}`)) as Hex;

async function post(i: number): Promise<{ jobId: Hex; hash: Hex }> {
  const c = at(i);
  const block = await c.public.getBlock();
  const r = await postJob(c, {
    teeTypeMask: 1 << 1,
    allowedMeasurements: [],
    workloadHash: keccak256(toHex('model')),
    inputCommitment: keccak256(toHex('inputs')),
    deadline: block.timestamp + 3600n,
    claimTimeout: 600n,
    escrow: ETH,
  });
  return { jobId: r.jobId, hash: r.hash as Hex };
}

const chainOf = () => ({ rpcUrl: anvil.rpcUrl, deployment });

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 6 });
  deployment = await deployJobFirn(anvil, keccak256(toHex('status-attack-bundle')));
}, 60_000);
afterAll(async () => {
  await anvil?.stop();
});

describe('firn job status with adversarial or careless journal entries', () => {
  it("does not delete this job's pending entry (its result-key salt) when the entry was sent on another chain", async () => {
    // A post sent on chain 999 (another network, e.g. a testnet the user also uses) still waits
    // there; the user asks about the id on this chain. Its transaction is unknown here, which says
    // nothing about its fate on its own chain.
    const jobId = freshId();
    const otherTx = keccak256(toHex('a post on another chain')) as Hex;
    const salt = keccak256(toHex('salt-of-the-other-chain-post')) as Hex;
    expect(
      recordJob({
        jobId,
        command: 'infer',
        options: {},
        postedAt: Date.now(),
        postTx: otherTx,
        postTxs: [otherTx],
        resultKemSalt: salt,
        sentOn: { chainId: 999, jobMarket: deployment.jobMarket, requester: anvil.accounts[2]!.address },
      } as never),
    ).toBe(true);
    const told = await jobStatus(chainOf(), jobId).catch((e: unknown) => e);
    expect(told).toMatchObject({ code: 'E_NOT_FOUND' });
    const left = (() => {
      try {
        return findJobRecord(jobId);
      } catch {
        return undefined;
      }
    })();
    expect(left?.postTx, "the other chain's pending entry (and its salt) was removed").toBe(otherTx);
  }, 60_000);

  it("does not adopt another account's mined post as this machine's job (an entry naming a transaction it did not send)", async () => {
    // Account 3 posts a job; this machine's journal (account 2) holds a pending entry whose postTx
    // is account 3's transaction (a copied, mistaken or planted entry).
    const theirs = await post(3);
    const expected = freshId();
    recordJob({
      jobId: expected,
      command: 'infer',
      options: {},
      postedAt: Date.now(),
      postTx: theirs.hash,
      postTxs: [theirs.hash],
      sentOn: {
        chainId: deployment.chainId,
        jobMarket: deployment.jobMarket,
        requester: anvil.accounts[2]!.address,
      },
    } as never);
    await jobStatus(chainOf(), expected).catch(() => undefined);
    const adopted = (() => {
      try {
        return findJobRecord(theirs.jobId);
      } catch {
        return undefined;
      }
    })();
    expect(
      adopted === undefined
        ? undefined
        : { requester: adopted.chain?.requester, postTx: adopted.chain?.postTx },
      "another account's job was written into this machine's journal as its own",
    ).toBeUndefined();
  }, 60_000);

  it("status of an unrelated job does not adopt another account's job through any pending entry either", async () => {
    const theirs = await post(4);
    const stray = freshId();
    recordJob({
      jobId: stray,
      command: 'run',
      options: {},
      postedAt: Date.now(),
      postTx: theirs.hash,
      sentOn: {
        chainId: deployment.chainId,
        jobMarket: deployment.jobMarket,
        requester: anvil.accounts[2]!.address,
      },
    } as never);
    // Status of a job with no entry here: the pending entries of this chain are settled first.
    const mine = await post(2);
    const status = await jobStatus(chainOf(), mine.jobId);
    expect(status).toMatchObject({ jobId: mine.jobId, status: 'Open' });
    expect(existsSync(join(journalDir(), `${theirs.jobId.toLowerCase()}.json`))).toBe(false);
  }, 60_000);

  it('an oversized, a non-JSON and a malformed entry for the asked job never stop its status, and are left in place', async () => {
    const dir = journalDir();
    mkdirSync(dir, { recursive: true });
    for (const [i, text] of [
      `{"command":"infer","options":{},"postTx":"0x${'ab'.repeat(32)}","pad":"${'x'.repeat(300 * 1024)}"}`,
      'not json {',
      '{"command":"infer","options":{},"postTx":12,"postTxs":"nope","sentOn":null,"postedAt":"soon"}',
      `{"command":"infer","options":{},"postTxs":[${Array.from({ length: 5000 }, (_, k) => `"0x${k.toString(16).padStart(64, '0')}"`).join(',')}],"postTx":"0x${'cd'.repeat(32)}","sentOn":{"chainId":${deployment.chainId},"jobMarket":"${deployment.jobMarket}","requester":"${anvil.accounts[2]!.address}"},"postedAt":1}`,
    ].entries()) {
      const job = await post(2);
      writeFileSync(join(dir, `${job.jobId.toLowerCase()}.json`), text);
      const t0 = performance.now();
      const status = await jobStatus(chainOf(), job.jobId).catch((e: unknown) => e);
      expect(status, `entry ${i}`).toMatchObject({ jobId: job.jobId, status: 'Open' });
      expect(performance.now() - t0, `entry ${i}: time`).toBeLessThan(10_000);
    }
    expect(readdirSync(dir).length).toBeGreaterThan(0);
  }, 120_000);
});
