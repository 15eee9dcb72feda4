import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FirnError, type Hex } from '@firn/core';
import {
  encodeAbiParameters,
  encodeEventTopics,
  HttpRequestError,
  parseAbiParameters,
  RpcRequestError,
  TimeoutError,
  TransactionExecutionError,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError,
} from 'viem';
import { describe, expect, it } from 'vitest';
import { firnJobMarketAbi } from '@firn/chain';
import {
  deployment,
  inferPosts as posts,
  requester,
  reserveInfer as reserve,
  resultKem,
  useTempFirnHome,
} from '../../../tests/helpers/resultKeyJournal.ts';
import { findJobRecord, journalDir, recordFile, settlePendingEntry } from './jobJournal.ts';
import { cliErrorBody, exitCodeOf } from './output.ts';

// Decision 1747: the salt of a derived result key is on disk (fsynced) before any escrow is sent,
// or the command is refused, exit 3, naming FIRN_HOME and the path; nothing is paid.
useTempFirnHome('firn-reserve-');

describe('reserveResultKey', () => {
  it('a FIRN_HOME that cannot hold the journal refuses before paying: exit 3 naming FIRN_HOME and the path', () => {
    const home = join(process.env['FIRN_HOME']!, 'a-file');
    writeFileSync(home, 'not a folder\n');
    process.env['FIRN_HOME'] = home;
    let err: unknown;
    try {
      reserve();
    } catch (e) {
      err = e;
    }
    expect(err).toBeDefined();
    expect(exitCodeOf(err)).toBe(3);
    const b = cliErrorBody(err);
    expect(b.code).toBe('E_INVALID_INPUT');
    expect(b.message).toContain(
      `FIRN_HOME ${home} cannot be written: ${join(home, 'jobs', 'result-key-abababababababab.json')} (ENOTDIR)`,
    );
    expect(b.message).toContain('no job was sent and nothing was paid');
    expect(b.message).toContain('--kem-key');
  });

  it('keeps the salt and public key (mode 0600) until the job entry holds them', () => {
    const file = reserve();
    expect(file.startsWith(journalDir())).toBe(true);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ command: 'infer', ...resultKem });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const jobId = `0x${'77'.repeat(32)}` as Hex;
    posts(file).onPosted(jobId);
    expect(existsSync(file)).toBe(false);
    expect(JSON.parse(readFileSync(join(journalDir(), `${jobId}.json`), 'utf8'))).toMatchObject(resultKem);
  });

  it('a command that fails before anything is sent leaves no reservation', () => {
    const file = reserve();
    posts(file).failed(new Error('no node'));
    expect(existsSync(file)).toBe(false);
  });

  // Decision 1747, amended: only a failure proving nothing was broadcast removes the reservation.
  const url = 'https://rpc.example/';
  const raw = { method: 'eth_sendRawTransaction', params: ['0x02f8'] };
  it('a read or the estimate that got no answer, or a JSON-RPC refusal of the send, leaves no reservation', () => {
    for (const e of [
      new TimeoutError({ body: { method: 'eth_estimateGas', params: [] }, url }),
      new FirnError('E_INTERNAL', 'runJob failed', {
        cause: new HttpRequestError({ body: { method: 'eth_getTransactionCount', params: [] }, url }),
      }),
      new RpcRequestError({ body: raw, error: { code: -32000, message: 'insufficient funds for gas' }, url }),
    ]) {
      const file = reserve();
      const warn: string[] = [];
      posts(file, warn).failed(e);
      expect(existsSync(file), String(e)).toBe(false);
      expect(warn).toEqual([]);
    }
  });

  it('a send with no answer, or refused as already in the pool, keeps the reservation and names it', () => {
    for (const e of [
      new FirnError('E_INTERNAL', 'runJob failed', {
        cause: new TransactionExecutionError(
          new HttpRequestError({ body: raw, url, details: 'socket hang up' }),
          {
            account: undefined as never,
            chain: undefined,
          } as never,
        ),
      }),
      new TimeoutError({ body: raw, url }),
      new RpcRequestError({ body: raw, error: { code: -32000, message: 'already known' }, url }),
    ]) {
      const file = reserve();
      const warn: string[] = [];
      posts(file, warn).failed(e);
      expect(existsSync(file), String(e)).toBe(true);
      expect(warn.join('\n')).toContain(file);
      expect(warn.join('\n')).toContain('firn job list');
      rmSync(file);
    }
  });

  it('a job entry that cannot be written keeps the reservation and warns that the result may be lost', () => {
    const file = reserve();
    const warn: string[] = [];
    const jobId = `0x${'88'.repeat(32)}` as Hex;
    // A folder where the entry would go: the write fails (EISDIR), also as root.
    rmSync(join(journalDir()), { recursive: true });
    mkdirSync(join(journalDir(), `${jobId}.json`), { recursive: true });
    writeFileSync(file, '{}');
    posts(file, warn).onPosted(jobId);
    expect(existsSync(file)).toBe(true);
    expect(warn.join('\n')).toMatch(/can no longer be opened/);
    expect(warn.join('\n')).toContain(file);
  });
});

// Decision 1760: the pending entry of a post (the salt, the signed transaction's hash) is on disk
// before the RPC is handed the transaction; settling it moves the salt to the job it posted.
describe('a post recorded before its send', () => {
  const signed = {
    hash: `0x${'e1'.repeat(32)}` as Hex,
    expectedJobId: `0x${'99'.repeat(32)}` as Hex,
    fromBlock: 1n,
  };
  const url = 'https://rpc.example/';
  const raw = { method: 'eth_sendRawTransaction', params: ['0x02f8'] };

  it('a send with no answer keeps the pending entry holding the salt, and names it with the commands that settle it', () => {
    const file = reserve();
    const warn: string[] = [];
    const post = posts(file, warn);
    post.onPostSigned(signed);
    expect(findJobRecord(signed.expectedJobId)).toMatchObject({ ...resultKem, postTx: signed.hash });
    post.failed(new TimeoutError({ body: raw, url }));
    expect(findJobRecord(signed.expectedJobId)).toMatchObject({ ...resultKem, postTxs: [signed.hash] });
    const said = warn.join('\n');
    expect(said).toContain(recordFile(signed.expectedJobId));
    expect(said).toContain(`firn job result ${signed.expectedJobId}`);
    expect(said).toContain('firn job list');
  });

  it('a send the RPC refused (nothing broadcast) leaves neither the pending entry nor the reservation', () => {
    const file = reserve();
    const warn: string[] = [];
    const post = posts(file, warn);
    post.onPostSigned(signed);
    post.failed(
      new RpcRequestError({ body: raw, error: { code: -32000, message: 'insufficient funds for gas' }, url }),
    );
    expect(findJobRecord(signed.expectedJobId)).toBeUndefined();
    expect(existsSync(file)).toBe(false);
    expect(warn).toEqual([]);
  });

  // A public client whose only mined transaction is `minedTx`, posting `jobId` (or none at all).
  const chainWith = (minedTx: Hex | undefined, jobId: Hex) =>
    ({
      public: {
        getTransactionReceipt: async ({ hash }: { hash: Hex }) => {
          if (hash !== minedTx) throw new TransactionReceiptNotFoundError({ hash });
          return {
            status: 'success',
            from: requester,
            blockNumber: 7n,
            blockHash: `0x${'b7'.repeat(32)}`,
            logs: [
              {
                address: deployment.jobMarket,
                ...encodeJobPosted(jobId),
              },
            ],
          };
        },
        getTransaction: async ({ hash }: { hash: Hex }) => {
          throw new TransactionNotFoundError({ hash });
        },
      },
    }) as never;
  // A JobPosted log of `jobId` by `requester` (its other fields zero).
  const encodeJobPosted = (jobId: Hex) => ({
    topics: encodeEventTopics({ abi: firnJobMarketAbi, eventName: 'JobPosted', args: { jobId, requester } }),
    data: encodeAbiParameters(
      parseAbiParameters('uint256, uint8, bytes32, bytes32, uint64, uint64, uint64, bytes32[], bytes32[]'),
      [1n, 1, `0x${'00'.repeat(32)}`, `0x${'00'.repeat(32)}`, 0n, 0n, 0n, [], []],
    ),
  });

  it('settled as posted (under another id than expected): the salt moves to the real job, the reservation goes', async () => {
    const file = reserve();
    const post = posts(file);
    post.onPostSigned(signed);
    post.failed(new TimeoutError({ body: raw, url }));
    const real = `0x${'5a'.repeat(32)}` as Hex;
    const fate = await settlePendingEntry(
      findJobRecord(signed.expectedJobId)!,
      signed.expectedJobId,
      chainWith(signed.hash, real),
      deployment,
    );
    expect(fate).toMatchObject({ fate: 'posted', jobId: real });
    expect(findJobRecord(signed.expectedJobId)).toBeUndefined();
    expect(findJobRecord(real)).toMatchObject({ ...resultKem, chain: { postTx: signed.hash } });
    expect(existsSync(file)).toBe(false);
  });

  it('a transaction of ours mined but its receipt not served yet (a lagging RPC) keeps the entry and its salt', async () => {
    const file = reserve();
    const post = posts(file);
    post.onPostSigned(signed);
    post.failed(new TimeoutError({ body: raw, url }));
    const lagging = {
      public: {
        getTransactionReceipt: async ({ hash }: { hash: Hex }) => {
          throw new TransactionReceiptNotFoundError({ hash });
        },
        getTransaction: async ({ hash }: { hash: Hex }) => ({
          hash,
          from: requester,
          blockHash: `0x${'b7'.repeat(32)}`,
          blockNumber: 7n,
        }),
      },
    } as never;
    const fate = await settlePendingEntry(
      findJobRecord(signed.expectedJobId)!,
      signed.expectedJobId,
      lagging,
      deployment,
    );
    expect(fate).toMatchObject({ fate: 'waiting', tx: signed.hash });
    expect(findJobRecord(signed.expectedJobId)).toMatchObject({ ...resultKem, postTx: signed.hash });
    expect(existsSync(file)).toBe(true);
  });

  it('settled as never mined nor known: the entry and its salt are discarded', async () => {
    const file = reserve();
    const post = posts(file);
    post.onPostSigned(signed);
    post.failed(new TimeoutError({ body: raw, url }));
    const fate = await settlePendingEntry(
      findJobRecord(signed.expectedJobId)!,
      signed.expectedJobId,
      chainWith(undefined, signed.expectedJobId),
      deployment,
    );
    expect(fate.fate).toBe('not posted');
    expect(findJobRecord(signed.expectedJobId)).toBeUndefined();
    expect(existsSync(file)).toBe(false);
  });
});
