import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { JobStatus } from '@firn/chain';
import { describe, expect, it } from 'vitest';
import { jobOnceRunning, settledJobStatus, useCliInferDevnet } from '../helpers/cliInferDevnet.ts';

// A careless new user runs `firn infer --devnet STATE …` as the README shows, against a running
// network. Promised (README, exit codes): a mistake in the command exits 3 naming the flag, and
// nothing is lost: the escrow stays recoverable.
const s = useCliInferDevnet('escrow');
const { dir, stateFile, firn, inferArgs: infer } = s;

describe('attack: a new user’s firn infer and the escrow', () => {
  it('an --escrow above the requester’s balance exits 3 naming --escrow and the balance (not E_CHAIN, exit 4 “try again later”)', async () => {
    const r = await firn(infer('big.json', ['--escrow', '1000000']), 55_000);
    expect(r.stderr).toMatch(/escrow/);
    expect(r.stderr).toMatch(/balance/);
    expect(r.stderr).not.toMatch(/E_CHAIN/);
    expect(r.status).toBe(3);
  }, 60_000);

  it('Ctrl-C once the node runs the job leaves the escrow recoverable: refunded, or a result `firn job result` can open', async () => {
    const run = s.spawnFirn(infer('c.json'));
    // Interrupted once the node has the job (its first progress event): the user gave up waiting.
    const jobId = await jobOnceRunning(run, 40_000);
    if (jobId === undefined) throw new Error(`no job started: ${run.stderr()}`);
    run.child.kill('SIGINT');
    // Decision 1630: the interrupt exits 130 (README) and, the job being the node's, says how to
    // fetch and open its result later.
    expect(await run.exited).toBe(130);
    expect(run.stderr()).toContain(`firn job result ${jobId} --devnet ${stateFile}`);
    // The node goes on with the job as it would for any requester that went away.
    const status = await settledJobStatus(s.net, jobId, 100);
    // The node had the job (it reported progress): it is not reclaimed under it.
    expect(status).not.toBe(JobStatus.Reclaimed);
    expect(status, 'the job is still running 25 s after the interrupt').not.toBe(JobStatus.Claimed);
    // Paid for: the result must still be the user's. `firn job result` is what the README offers.
    // Another requester key cannot open it, and says which flag to fix (nothing written).
    writeFileSync(join(dir, 'other.key'), `0x${'42'.repeat(32)}\n`, { mode: 0o600 }); // a made-up test key
    const wrongOut = join(dir, 'c-wrong');
    const wrong = await firn(
      ['job', 'result', jobId, '--devnet', stateFile, '--key-file', 'other.key', '--out', wrongOut],
      20_000,
    );
    expect(wrong.stderr).toMatch(/E_INVALID_INPUT.*--key-file/);
    expect(wrong.status).toBe(3);
    expect(existsSync(wrongOut)).toBe(false);
    const out = join(dir, 'c-result');
    const r = await firn(['job', 'result', jobId, '--devnet', stateFile, '--out', out], 20_000);
    expect(r.status, r.stderr).toBe(0);
    const files = existsSync(out) ? readdirSync(out) : [];
    // An opened output, not only `output.sealed` under a key the interrupted run threw away.
    expect(files.filter((f) => f !== 'proof.json' && !f.endsWith('.sealed'))).toEqual(['output']);
    // The plaintext the node computed: what an uninterrupted run of the same job writes.
    const again = await firn(infer('c-again.json'), 30_000);
    expect(again.status, again.stderr).toBe(0);
    expect(readFileSync(join(out, 'output'), 'utf8')).toBe(readFileSync(join(dir, 'c-again.json'), 'utf8'));
  }, 60_000);

  // Last: it stops the node. The registry still lists it Active (a crashed node, a devnet half
  // stopped). README: an unreachable node exits 4 ("try again later") naming it; it is no
  // attestation refusal (exit 2) of a node that answered.
  it('a registered node that does not answer exits 4 naming its URL, not E_POLICY_REJECTED (exit 2)', async () => {
    const url = s.net.node.url;
    await s.net.node.stop();
    const r = await firn(infer('down.json'), 55_000);
    expect(r.stderr).not.toMatch(/E_POLICY_REJECTED/);
    expect(r.stderr).toContain(url);
    expect(r.status).toBe(4);
  }, 60_000);
});
