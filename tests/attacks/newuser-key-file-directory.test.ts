import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModel } from '../../packages/cli/src/devnet/demo/inferenceDemo.ts';
import { runFirn } from '../helpers/firnCli.ts';

// A new user points --key-file at the folder that holds the keys (`.devnet/keys`, `~/.firn`)
// instead of a file in it. readKey (packages/cli/src/chainArgs.ts) calls readFileSync on it
// unguarded: EISDIR is no FirnError, so every command that takes a key answers
// "error: E_INTERNAL: internal error", exit 1 ("the job failed, or an unexpected error"), naming
// neither the flag nor the path. README: errors name their cause (the path, the flag) with a stable
// code; a path mistake is exit 3 ("fix the command").
const dir = mkdtempSync(join(tmpdir(), 'firn-atk-keydir-'));
const keys = join(dir, '.devnet', 'keys');
const ID = `0x${'ab'.repeat(32)}`;

beforeAll(() => {
  mkdirSync(keys, { recursive: true });
  writeFileSync(join(keys, 'requester.key'), `0x${'11'.repeat(32)}\n`, { mode: 0o600 });
  // A devnet state file (its RPC is never reached: the key is read first).
  const a = (b: string) => `0x${b.repeat(20)}`;
  writeFileSync(
    join(dir, 'state.json'),
    JSON.stringify({
      rpcUrl: 'http://127.0.0.1:9',
      chainId: 31337,
      contracts: {
        registry: a('11'),
        verifierSet: a('22'),
        jobMarket: a('33'),
        dataLedger: a('44'),
        rewards: a('55'),
        timelock: a('66'),
      },
      deployBlock: '0',
    }),
  );
  writeFileSync(join(dir, 'model.onnx'), demoModel());
  writeFileSync(
    join(dir, 'input.json'),
    JSON.stringify({ features: { dims: [1, 4], type: 'float32', data: [1, 2, 3, 4] } }),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cases: [string, string[]][] = [
  [
    'infer',
    ['infer', '--devnet', 'state.json', '--model', 'model.onnx', '--input', 'input.json', '--out', 'o.json'],
  ],
  ['job reclaim', ['job', 'reclaim', ID, '--devnet', 'state.json']],
  ['rewards claim', ['rewards', 'claim', '--devnet', 'state.json']],
];

describe('attack: --key-file names a folder', () => {
  for (const [name, args] of cases)
    it(`firn ${name} --key-file .devnet/keys exits 3 naming --key-file and the folder, not E_INTERNAL`, () => {
      const r = runFirn(dir, 60_000, ...args, '--key-file', keys);
      expect(r.out).not.toMatch(/E_INTERNAL/);
      expect(r.out).toContain('--key-file');
      expect(r.out).toContain(keys);
      expect(r.code, r.out).toBe(3);
    });
});

// The same mistake with the other files a command reads: train's readCapped
// (packages/cli/src/commands/train.ts) and run's (packages/cli/src/commands/run.ts) stat the path
// (a folder has a size) and then readFileSync it; `proof verify` (commands/proof.ts) reads its file
// with a bare readFileSync. infer's own reader and `firn data verify`/`attest verify` already say
// "--model kdir: is a directory" (exit 3).
const inputCases: [string, string[]][] = [
  [
    'train --data',
    [
      'train',
      '--devnet',
      'state.json',
      '--data',
      keys,
      '--out',
      'tr',
      '--key-file',
      join(keys, 'requester.key'),
    ],
  ],
  [
    'train --model',
    [
      'train',
      '--devnet',
      'state.json',
      '--data',
      'data.csv',
      '--model',
      keys,
      '--out',
      'tr2',
      '--key-file',
      join(keys, 'requester.key'),
    ],
  ],
  [
    'run --input',
    [
      'run',
      '--devnet',
      'state.json',
      '--app',
      `0x${'11'.repeat(32)}`,
      '--workload',
      'w',
      '--input',
      `data=${keys}`,
      '--out',
      'rr',
      '--key-file',
      join(keys, 'requester.key'),
    ],
  ],
  ['proof verify', ['proof', 'verify', keys, '--devnet', 'state.json']],
];

describe('attack: an input file argument names a folder', () => {
  for (const [name, args] of inputCases)
    it(`firn ${name} <folder> exits 3 naming the folder, not E_INTERNAL`, () => {
      writeFileSync(join(dir, 'data.csv'), 'a,b,label\n1,2,0\n3,4,1\n');
      const r = runFirn(dir, 60_000, ...args);
      expect(r.out).not.toMatch(/E_INTERNAL/);
      expect(r.out).toContain(keys);
      expect(r.code, r.out).toBe(3);
    });
});
