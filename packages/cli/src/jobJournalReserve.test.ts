import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FirnDeployment } from '@firn/chain';
import { FirnError, type Hex } from '@firn/core';
import { HttpRequestError, RpcRequestError, TimeoutError, TransactionExecutionError } from 'viem';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { journalDir, journalPosts, reserveResultKey } from './jobJournal.ts';
import { exitCodeOf, cliErrorBody } from './output.ts';

// Decision 1747: the salt of a derived result key is on disk (fsynced) before any escrow is sent,
// or the command is refused, exit 3, naming FIRN_HOME and the path; nothing is paid.
const dir = mkdtempSync(join(tmpdir(), 'firn-reserve-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const saved = process.env['FIRN_HOME'];
beforeEach(() => {
  process.env['FIRN_HOME'] = mkdtempSync(join(dir, 'home-'));
});
afterEach(() => {
  if (saved === undefined) delete process.env['FIRN_HOME'];
  else process.env['FIRN_HOME'] = saved;
});

const resultKem = {
  resultKemSalt: `0x${'ab'.repeat(32)}` as Hex,
  resultKemPublicKey: `0x${'cd'.repeat(32)}` as Hex,
};
const deployment = { chainId: 31337, jobMarket: `0x${'11'.repeat(20)}` } as unknown as FirnDeployment;
const reserve = () =>
  reserveResultKey({ command: 'infer', options: { out: '/x' }, resultKem, kemFlag: '--kem-key' });
const posts = (reservation: string, warn: string[] = []) =>
  journalPosts({
    command: 'infer',
    options: { out: '/x' },
    deployment,
    requester: `0x${'22'.repeat(20)}` as Hex,
    resultKem,
    reservation,
    guard: { sent: () => {}, posted: () => {} },
    warn: (l) => warn.push(l),
  });

describe('reserveResultKey', () => {
  it('a FIRN_HOME that cannot hold the journal refuses before paying: exit 3 naming FIRN_HOME and the path', () => {
    const home = join(dir, 'a-file');
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
