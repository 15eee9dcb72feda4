import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFirn } from '../helpers/firnCli.ts';
import { writeStoppedDevnetState } from '../helpers/stoppedDevnetState.ts';

// A new user hands `firn train` / `firn infer` a file of the wrong kind (an empty CSV, a CSV where
// a JSON model definition or a tensor JSON is expected). The error must name the flag and the path
// the user has to fix ("CSV: no rows" alone does not say which of the files is wrong).
const dir = mkdtempSync(join(tmpdir(), 'firn-file-content-'));
let state: string;
const csv = join(dir, 'my data.csv');
const empty = join(dir, 'empty.csv');
const good = join(dir, 'good.csv');

beforeAll(async () => {
  state = await writeStoppedDevnetState(dir);
  writeFileSync(csv, 'a,b,label\n1,2,0\n3,4,1\n');
  writeFileSync(empty, '');
  writeFileSync(
    good,
    `a,b,label\n${Array.from({ length: 40 }, (_, i) => `${i},${i * 2},${i % 2}`).join('\n')}\n`,
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const firn = (...args: string[]) => runFirn(dir, 60_000, ...args);

describe('a file of the wrong kind is named with its flag', () => {
  it('train --data with an empty file names --data and the path', () => {
    const r = firn('train', '--devnet', state, '--data', empty, '--out', join(dir, 'm1'));
    expect(r.code, r.out).toBe(3);
    expect(r.out).toContain(`--data ${empty}`);
  });

  it('train --model with a CSV names --model and the path', () => {
    const r = firn('train', '--devnet', state, '--data', good, '--model', csv, '--out', join(dir, 'm2'));
    expect(r.code, r.out).toBe(3);
    expect(r.out).toContain(`--model ${csv}`);
  });

  it('infer --input with a CSV names --input and the path', () => {
    const model = join(dir, 'm.onnx');
    // the smallest ModelProto the local check accepts: ir_version = 7
    writeFileSync(model, Buffer.from([0x08, 0x07]));
    const r = firn(
      'infer',
      '--devnet',
      state,
      '--model',
      model,
      '--input',
      csv,
      '--out',
      join(dir, 'o.json'),
    );
    expect(r.code, r.out).toBe(3);
    expect(r.out).toContain(`--input ${csv}`);
  });
});
