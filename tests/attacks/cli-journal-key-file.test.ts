import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// The attack (red team): `firn job result JOBID` without --key-file derives the result key from
// the requester key, and takes it from the `--key-file` the job's journal entry names
// ($FIRN_HOME/jobs/<jobId>.json, decision 1630). Whoever can write ~/.firn (a synced dotfile
// folder, a shared home) names any path there: a FIFO (the command blocks for ever on its read,
// no timeout, Ctrl-C the only way out), /dev/zero or /dev/urandom (read whole into memory until
// the process dies), a file on a hung network mount. The journal's own size is capped at 256 KiB;
// the file it points at is read with no cap and no check that it is a key file.
// Promise (decision 1630, 1.): a key that is not the one the job was posted with is refused naming
// `--key-file`; the journal holds only what is needed to find the key, and a tampered entry makes
// the command fail, not hang.
const dir = mkdtempSync(join(tmpdir(), 'firn-journal-key-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const JOB_ID = `0x${'4e'.repeat(32)}`;
const MARKET = `0x${'66'.repeat(20)}`;
const ROOT = resolve(__dirname, '../..');

describe('attack: a tampered journal entry names a FIFO as the key file', () => {
  it('`firn job result` refuses it at once (E_INVALID_INPUT naming --key-file), it does not block on it', async () => {
    const home = join(dir, 'home');
    mkdirSync(join(home, 'jobs'), { recursive: true });
    const fifo = join(dir, 'key.fifo');
    execFileSync('mkfifo', [fifo]);
    // An entry bound to the chain asked (decision 1650): only such an entry is used at all.
    const blockHash = `0x${'33'.repeat(32)}`;
    const requester = `0x${'44'.repeat(20)}`;
    writeFileSync(
      join(home, 'jobs', `${JOB_ID}.json`),
      JSON.stringify({
        jobId: JOB_ID,
        command: 'infer',
        options: { keyFile: fifo },
        postedAt: 1,
        resultKemSalt: `0x${'11'.repeat(32)}`,
        resultKemPublicKey: `0x${'22'.repeat(32)}`,
        chain: {
          chainId: 31337,
          jobMarket: MARKET,
          requester,
          postTx: `0x${'55'.repeat(32)}`,
          postBlock: '7',
          postBlockHash: blockHash,
        },
      }),
    );
    const script = join(dir, 'result.mts');
    writeFileSync(
      script,
      `import { journalResultKey } from ${JSON.stringify(join(ROOT, 'packages/cli/src/commands/job.ts'))};
const chain = { rpcUrl: 'http://127.0.0.1:9', deployment: { chainId: 31337, jobMarket: ${JSON.stringify(MARKET)} } };
// The chain as it answers for this job: the entry's post block, the entry's requester.
const c = { public: { getBlock: async () => ({ hash: ${JSON.stringify(blockHash)} }) } };
try {
  await journalResultKey(chain as never, c as never, { requester: ${JSON.stringify(requester)} } as never, ${JSON.stringify(JOB_ID)});
  console.log('RESULT ok');
} catch (e) {
  console.log('RESULT', (e as { code?: string }).code, (e as Error).message);
}
`,
    );
    const child = spawn(join(ROOT, 'node_modules/.bin/tsx'), [script], {
      cwd: ROOT,
      env: { ...process.env, FIRN_HOME: home, FIRN_REQUESTER_KEY: '' },
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d.toString();
    });
    child.stderr.on('data', (d) => {
      out += d.toString();
    });
    const code = await new Promise<number | null | 'hung'>((r) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        r('hung');
      }, 20_000);
      child.on('exit', (c) => {
        clearTimeout(t);
        r(c);
      });
    });
    expect(code, out).not.toBe('hung');
    expect(out).toMatch(/RESULT E_INVALID_INPUT .*--key-file/);
  }, 40_000);
});
