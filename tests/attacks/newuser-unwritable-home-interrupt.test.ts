import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { JobStatus } from '@firn/chain';
import { beforeAll, describe, expect, it } from 'vitest';
import { jobOnceRunning, settledJobStatus, useCliInferDevnet } from '../helpers/cliInferDevnet.ts';

// A careless new user whose $FIRN_HOME cannot be written (set to a file by mistake; or a
// ~/.firn that an earlier `sudo npx firn …` left owned by root) runs `firn infer --devnet …` and
// presses Ctrl-C once the node has the job, as the README invites: "Ctrl-C … loses nothing: … one a
// node has keeps running, and the command prints the `firn job result JOBID … --out DIR` line that
// later fetches and opens its result". Without --kem-key the result key is derived from the
// requester key and a random per-job salt kept ONLY in $FIRN_HOME/jobs/ (resultKem.ts, decision
// 1630). infer never checks that the journal can be written before it pays the escrow
// (jobJournal.ts recordJob: best effort, a warning after the post), so the salt dies with the
// process: the node runs the job, the operator is paid, and the printed `firn job result` line
// can never open the outputs. Safe outcome: either infer refuses before any escrow is paid (as it
// does for an --out it cannot write), or the printed command opens the result.
const s = useCliInferDevnet('home', 'firn-home');
const { dir, stateFile } = s;
const homeFile = join(dir, 'firn-home');

beforeAll(() => {
  // Not a folder: nothing can be created under it (ENOTDIR, for root as for anyone).
  writeFileSync(homeFile, 'not a folder\n');
});

describe('attack: Ctrl-C on firn infer with a $FIRN_HOME that cannot be written', () => {
  it('either nothing is paid, or the printed `firn job result` line opens the result', async () => {
    const infer = s.spawnFirn(s.inferArgs('c.json'));
    const jobId = await jobOnceRunning(infer, 45_000);
    if (jobId === undefined) {
      // Refused before paying: the safe outcome (exit 3, naming FIRN_HOME), and no job posted.
      infer.child.kill('SIGKILL');
      expect(infer.stderr()).not.toMatch(/posted/);
      expect(infer.stderr()).toMatch(/FIRN_HOME|firn-home/);
      return;
    }
    infer.child.kill('SIGINT');
    expect(await infer.exited).toBe(130);
    const status = await settledJobStatus(s.net, jobId, 120);
    // The node ran it: the escrow goes to the operator.
    expect(status).not.toBe(JobStatus.Reclaimed);
    const out = join(dir, 'c-result');
    const r = await s.firn(['job', 'result', jobId, '--devnet', stateFile, '--out', out], 30_000);
    const files = existsSync(out) ? readdirSync(out) : [];
    // An opened output, not only `output.sealed` under a key nobody can derive again.
    expect(
      files.filter((f) => f !== 'proof.json' && !f.endsWith('.sealed')),
      `${infer.stderr()}\n--- job result exit ${r.status}:\n${r.output}`,
    ).toEqual(['output']);
  }, 120_000);
});
