import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AnvilInstance,
  createFirnClients,
  type FirnClients,
  type FirnDeployment,
  startAnvil,
} from '@firn/chain';
import type { PostJobSent } from '@firn/client';
import { FirnError, type Hex } from '@firn/core';
import { keccak256, toHex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployJobFirn, postOpenJob } from '../test/jobChain.ts';
import { jobReclaim, settlePendingEntries } from './commands/job.ts';
import { findJobRecord, journalPosts, recordFile, recordJob } from './jobJournal.ts';

// Decision 1685: a pending journal entry (written when the postJob transaction is sent, decision
// 1665) follows the job its post actually posted, and goes when its transaction was never mined.
const dir = mkdtempSync(join(tmpdir(), 'firn-journal-'));
process.env['FIRN_HOME'] = join(dir, 'home');
const id = (s: string) => keccak256(toHex(`job ${s}`));
const tx = (s: string) => keccak256(toHex(`tx ${s}`));
const DEPLOYMENT = {
  chainId: 31337,
  registry: `0x${'01'.repeat(20)}`,
  verifierSet: `0x${'02'.repeat(20)}`,
  jobMarket: `0x${'03'.repeat(20)}`,
  dataLedger: `0x${'04'.repeat(20)}`,
  deployBlock: 0n,
} as FirnDeployment;
const REQUESTER = `0x${'aa'.repeat(20)}` as Hex;
const POSTED = { txHash: tx('2'), blockNumber: 7n, blockHash: keccak256(toHex('block 7')) };

function post(deployment = DEPLOYMENT, requester = REQUESTER) {
  const seen: string[] = [];
  const p = journalPosts({
    command: 'infer',
    options: { model: '/m.onnx' },
    deployment,
    requester,
    guard: { sent: (t) => seen.push(`sent ${t.hash}`), posted: (j) => seen.push(`posted ${j}`) },
    warn: () => undefined,
  });
  return { p, seen };
}
const sent = (jobId: Hex, hash: Hex): PostJobSent => ({ hash, expectedJobId: jobId, fromBlock: 1n });

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('journalPosts: the pending entry follows the post (decision 1685)', () => {
  it('a re-priced post whose receipt names another job leaves no pending entry at the expected id', () => {
    const { p, seen } = post();
    // Sent, then re-priced at the same nonce (the same simulation: the same expected id); another
    // job was posted first, so the receipt names the next id.
    p.onPostSent(sent(id('A'), tx('1')));
    p.onPostSent(sent(id('A'), tx('2')));
    expect(findJobRecord(id('A'))).toMatchObject({ postTx: tx('2'), postTxs: [tx('1'), tx('2')] });
    p.onPosted(id('C'), POSTED);
    expect(existsSync(recordFile(id('A'))), 'the pending entry of the expected id is gone').toBe(false);
    const c = findJobRecord(id('C'))!;
    expect(c).toMatchObject({ jobId: id('C'), chain: { postTx: tx('2'), postBlock: '7' } });
    expect(c.postTx).toBeUndefined();
    expect(c.sentOn).toEqual({ chainId: 31337, jobMarket: DEPLOYMENT.jobMarket, requester: REQUESTER });
    expect(seen).toEqual([`sent ${tx('1')}`, `sent ${tx('2')}`, `posted ${id('C')}`]);
  });

  it("another run's entry at the expected id is neither replaced nor removed", () => {
    recordJob({ jobId: id('B'), command: 'train', options: {}, postedAt: 1, postTx: tx('theirs') });
    const { p } = post();
    p.onPostSent(sent(id('B'), tx('3')));
    p.onPostSent(sent(id('B'), tx('4')));
    p.onPosted(id('D'), { ...POSTED, txHash: tx('4') });
    expect(findJobRecord(id('B'))).toMatchObject({ command: 'train', postTx: tx('theirs') });
  });

  it('a post whose transaction another of the account replaced, or that reverted, leaves no entry', () => {
    for (const [k, code] of [
      ['E', 'E_CHAIN_REPLACED'],
      ['F', 'E_CHAIN_REVERTED'],
    ] as const) {
      const { p } = post();
      p.onPostSent(sent(id(k), tx(`${k}1`)));
      p.failed(new FirnError('E_INTERNAL', 'runJob failed', { cause: new FirnError(code, 'postJob') }));
      expect(existsSync(recordFile(id(k))), code).toBe(false);
    }
  });

  it('a post that may still be mined (not mined in time, the RPC gone) keeps its pending entry', () => {
    const { p } = post();
    p.onPostSent(sent(id('G'), tx('G1')));
    p.failed(new FirnError('E_CHAIN', 'postJob: transaction not mined after 60 s'));
    expect(findJobRecord(id('G'))).toMatchObject({ postTx: tx('G1') });
  });
});

describe('firn job reclaim and list with a pending entry (decision 1685)', () => {
  let anvil: AnvilInstance;
  let deployment: FirnDeployment;
  let requester: FirnClients;
  beforeAll(async () => {
    anvil = await startAnvil({ accounts: 4 });
    deployment = await deployJobFirn(anvil, keccak256(toHex('measurement')));
    requester = createFirnClients(anvil.rpcUrl, anvil.accounts[2]!.privateKey, deployment, {
      pollingIntervalMs: 50,
    });
    // The requester key `firn job reclaim` signs with.
    process.env['FIRN_REQUESTER_KEY'] = anvil.accounts[2]!.privateKey;
  }, 120_000);
  afterAll(async () => {
    await anvil?.stop();
  });
  const chain = () => ({ rpcUrl: anvil.rpcUrl, deployment });

  it('reclaim of an entry whose transaction was replaced says nothing was posted and removes the entry', async () => {
    // The post's transaction never reached a block (another transaction of the account took its
    // nonce): the chain knows neither it nor a job at the expected id.
    const expected = id('never posted');
    const { p } = post(deployment, anvil.accounts[2]!.address);
    p.onPostSent(sent(expected, tx('replaced')));
    const e = await jobReclaim(chain(), expected).catch((x: unknown) => x as FirnError);
    expect(e).toMatchObject({ code: 'E_NOT_FOUND' });
    expect((e as FirnError).message).toMatch(/neither mined nor waiting in the pool.*nothing to reclaim/);
    expect(existsSync(recordFile(expected))).toBe(false);
  }, 60_000);

  it('reclaim of an expected id another job took names the job the post did post, and list moves the entry there', async () => {
    // The post was mined, but as the next id: the expected one was taken (here: never posted).
    const real = await postOpenJob(requester);
    const block = await requester.public.getBlock({ blockTag: 'latest', includeTransactions: true });
    const hash = (block.transactions[0] as { hash: Hex }).hash;
    const expected = id('taken by another');
    const { p } = post(deployment, anvil.accounts[2]!.address);
    p.onPostSent(sent(expected, hash));
    const e = await jobReclaim(chain(), expected).catch((x: unknown) => x as FirnError);
    expect(e).toMatchObject({ code: 'E_CONFLICT' });
    expect((e as FirnError).message).toContain(`firn job reclaim ${real}`);
    expect(existsSync(recordFile(expected))).toBe(false);
    expect(findJobRecord(real)).toMatchObject({ chain: { postTx: hash } });

    // The same through `firn job list`: a pending entry of this market is settled before listing.
    const other = id('listed');
    const { p: q } = post(deployment, anvil.accounts[2]!.address);
    q.onPostSent(sent(other, tx('listed, replaced')));
    const lines = await settlePendingEntries(chain());
    expect(lines.join('\n')).toMatch(new RegExp(`local record of job ${other} removed`));
    expect(existsSync(recordFile(other))).toBe(false);
    const r = await jobReclaim(chain(), real);
    expect(r).toMatchObject({ jobId: real, status: 'Reclaimed' });
  }, 60_000);
});
