import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { setupCliInferOverProxy } from './cliInferOverProxy.ts';

// A careless user starts two `firn infer` runs with the same --out (a command pasted twice, a loop
// over inputs that forgot to vary --out), or saves a file there while a long job runs. Each run
// checks before paying that --out and the proof path are new files (assertWritableNew in
// packages/cli/src/commands/infer.ts), and both pass while neither has written. When the later
// one finishes, writeFilesAtomically (same file) renames its result over whatever is at --out now:
// the other paid job's decrypted result (and its proof) is silently replaced. `firn artifact
// seal|open` re-check at the end ("a file that appeared meanwhile is not replaced without
// --force", writeStreamAtomically in packages/cli/src/commands/artifact.ts); infer, train and
// `job result` do not. README: outputs are never replaced without --force.
//
// The RPC is a proxy to the network's anvil that holds the CLI's chain calls for a moment once its
// postJob transaction went through, so that the other file lands while this job is in flight.
let posted = false;
let release: () => void = () => undefined;
const gate = new Promise<void>((r) => {
  release = r;
});
const s = setupCliInferOverProxy(
  'outmeanwhile',
  (m, p) => {
    if (m.method === 'eth_sendRawTransaction' && !posted) {
      posted = true;
      return undefined;
    }
    if (posted) return gate.then(() => p.forward(m));
    return undefined;
  },
  () => release(),
);

describe('attack: a file appears at firn infer --out while the job runs', () => {
  it('the result never replaces it: the file the user has at --out is intact when the command ends', async () => {
    const { child: c, output, exited } = s.spawnInfer('result.json');
    const t0 = Date.now();
    while (!posted && Date.now() - t0 < 90_000 && c.exitCode === null)
      await new Promise((r) => setTimeout(r, 50));
    expect(posted, output()).toBe(true);
    // The other run (or the user) writes its result at the same path meanwhile.
    const theirs = '{"other job":"its decrypted result, paid for"}\n';
    writeFileSync(join(s.dir, 'result.json'), theirs);
    writeFileSync(join(s.dir, 'result.proof.json'), '{"other job":"its proof"}\n');
    release();
    const killer = setTimeout(() => c.kill('SIGKILL'), 120_000);
    const code = await exited;
    clearTimeout(killer);
    expect(existsSync(join(s.dir, 'result.json'))).toBe(true);
    expect(
      readFileSync(join(s.dir, 'result.json'), 'utf8'),
      `firn infer exited ${code} and replaced result.json:\n${output()}`,
    ).toBe(theirs);
  }, 240_000);
});
