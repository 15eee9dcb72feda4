import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFirn } from '../helpers/firnCli.ts';
import { writeStoppedDevnetState } from '../helpers/stoppedDevnetState.ts';

// A new user passes `firn infer --model` a CSV, an empty file or random bytes. That is the user's
// mistake, visible on the user's machine: it must be refused before the chain is asked anything
// (no job posted, no gas, no escrow), exit 3, naming --model and the path. Here the state file's RPC
// is down, so a command that reaches the network first answers E_UNAVAILABLE instead.
const dir = mkdtempSync(join(tmpdir(), 'firn-infer-wrong-model-'));
let state: string;
const input = join(dir, 'in.json');

beforeAll(async () => {
  state = await writeStoppedDevnetState(dir);
  writeFileSync(input, '{"x":{"dims":[1],"type":"float32","data":[1]}}');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('firn infer with a file that is not a model', () => {
  for (const [name, bytes] of [
    ['data.csv', 'a,b,label\n1,2,0\n3,4,1\n'],
    ['empty.onnx', ''],
    ['notes.txt', 'this is my model, trust me\n'],
  ] as const)
    it(`--model ${name} is refused locally (exit 3, names --model and the path), before the chain`, () => {
      const model = join(dir, name);
      writeFileSync(model, bytes);
      const r = runFirn(
        dir,
        60_000,
        'infer',
        '--devnet',
        state,
        '--model',
        model,
        '--input',
        input,
        '--out',
        join(dir, `${name}.out.json`),
      );
      expect(r.code, r.out).toBe(3);
      expect(r.out).toContain('--model');
      expect(r.out).toContain(model);
      expect(r.out).not.toMatch(/E_UNAVAILABLE|E_INTERNAL/);
    });
});
