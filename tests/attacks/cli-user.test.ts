import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AnvilInstance, startAnvil } from '@firn/chain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectUsefulError, runFirn } from '../helpers/firnCli.ts';

// A careless new user following the README: wrong paths, wrong RPC URL, wrong contract address,
// existing output files. Every error must name the cause the user can fix (never a bare
// E_INTERNAL), and no mistake may lose the user's keys or artifacts.
const dir = mkdtempSync(join(tmpdir(), 'firn-careless-'));
let anvil: AnvilInstance;

const firn = (...args: string[]) => runFirn(dir, 60_000, ...args);

/**
 * Writes a devnet state file (as `firn devnet` would) whose registry and job market addresses hold
 * no contract, so any command reading it fails before paying escrow. Returns its path.
 */
function writeDevnetState(name: string): string {
  const state = join(dir, name);
  writeFileSync(
    state,
    JSON.stringify({
      rpcUrl: anvil.rpcUrl,
      chainId: 31337,
      contracts: { registry: `0x${'12'.repeat(20)}`, jobMarket: `0x${'13'.repeat(20)}` },
      accounts: { requester: { privateKey: `0x${'ab'.repeat(32)}` } },
    }),
  );
  return state;
}

/** `firn infer --devnet state --model m --input i --out o --proof p [...extra]`. */
function infer(
  f: { state: string; model: string; input: string; out: string; proof: string },
  ...extra: string[]
) {
  return firn(
    'infer',
    '--devnet',
    f.state,
    '--model',
    f.model,
    '--input',
    f.input,
    '--out',
    f.out,
    '--proof',
    f.proof,
    ...extra,
  );
}

/** A one-value float32 input file, as `firn infer --input` reads it. */
const oneInput = '{"x":{"dims":[1],"type":"float32","data":[1]}}';

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 1 });
}, 60_000);
afterAll(() => anvil?.stop());

describe('careless new user', () => {
  it('artifact keygen over an existing key file refuses and keeps the old key (else every artifact sealed to it is lost)', () => {
    const key = join(dir, 'me.json');
    expect(firn('artifact', 'keygen', '--out', key).code).toBe(0);
    const before = readFileSync(key, 'utf8');
    const r = firn('artifact', 'keygen', '--out', key);
    expect(readFileSync(key, 'utf8')).toBe(before);
    expectUsefulError(r, key);
  });

  it('artifact seal and open name a missing input or key file', () => {
    const missing = join(dir, 'no-such-input.bin');
    expectUsefulError(
      firn('artifact', 'seal', missing, '--out', join(dir, 's.bin'), '--recipient', `0x${'11'.repeat(32)}`),
      missing,
    );
    writeFileSync(join(dir, 'plain.txt'), 'hello');
    const kf = join(dir, 'k.json');
    firn('artifact', 'keygen', '--out', kf);
    const pub = (JSON.parse(readFileSync(kf, 'utf8')) as { publicKey: string }).publicKey;
    expect(
      firn('artifact', 'seal', join(dir, 'plain.txt'), '--out', join(dir, 'p.sealed'), '--recipient', pub)
        .code,
    ).toBe(0);
    const noKey = join(dir, 'no-such-key.json');
    expectUsefulError(
      firn('artifact', 'open', join(dir, 'p.sealed'), '--out', join(dir, 'o.txt'), '--key-file', noKey),
      noKey,
    );
  });

  it('a wrong RPC URL is named, not E_INTERNAL', () => {
    expectUsefulError(
      firn('nodes', 'list', '--rpc', 'http://127.0.0.1:1', '--registry', `0x${'12'.repeat(20)}`),
      'http://127.0.0.1:1',
    );
  });

  it('a registry address with no firn contract behind it is named, not E_INTERNAL', () => {
    const wrong = `0x${'12'.repeat(20)}`;
    expectUsefulError(firn('nodes', 'list', '--rpc', anvil.rpcUrl, '--registry', wrong), wrong);
  });

  it('infer names a missing model file', () => {
    const state = writeDevnetState('devnet.json');
    const model = join(dir, 'no-such-model.onnx');
    writeFileSync(join(dir, 'in.json'), oneInput);
    expectUsefulError(
      infer({
        state,
        model,
        input: join(dir, 'in.json'),
        out: join(dir, 'o.json'),
        proof: join(dir, 'p.json'),
      }),
      model,
    );
  });
  it('infer refuses an --out or --proof that already exists (here the model itself) before any escrow is paid', () => {
    const state = writeDevnetState('devnet2.json');
    const model = join(dir, 'mine.onnx');
    const input = join(dir, 'mine.json');
    writeFileSync(model, 'my only copy of the model');
    writeFileSync(input, oneInput);
    // Flags swapped by mistake: the proof would be written over the model.
    const r = infer({ state, model, input, out: join(dir, 'out.json'), proof: model });
    expect(readFileSync(model, 'utf8')).toBe('my only copy of the model');
    expectUsefulError(r, model);
    expect(r.out).toMatch(/E_CONFLICT/);
  });
  it('node start names a missing --sim-platform file instead of restarting an enclave that fails with E_INTERNAL', () => {
    const missing = join(dir, 'no-such-platform.json');
    const r = firn(
      'node',
      'start',
      '--no-register',
      '--sim-platform',
      missing,
      '--data-dir',
      join(dir, 'node'),
    );
    expectUsefulError(r, missing);
  });
  it('train refuses a MODEL_DIR that already holds files before any escrow is paid', () => {
    const state = writeDevnetState('devnet3.json');
    const csv = join(dir, 'd.csv');
    writeFileSync(
      csv,
      `a,b,label\n${Array.from({ length: 20 }, (_v, i) => `${i},${i * 2},${i % 2}`).join('\n')}\n`,
    );
    const modelDir = join(dir, 'my-project');
    mkdirSync(modelDir);
    writeFileSync(join(modelDir, 'README.md'), 'my notes');
    const r = firn(
      'train',
      '--devnet',
      state,
      '--data',
      csv,
      '--out',
      modelDir,
      '--epochs',
      '1',
      '--hidden',
      '2',
    );
    expect(readFileSync(join(modelDir, 'README.md'), 'utf8')).toBe('my notes');
    expectUsefulError(r, modelDir);
    expect(r.out).toMatch(/E_CONFLICT/);
  });
  it('a mistyped --escrow is named, not E_INTERNAL', () => {
    const state = writeDevnetState('devnet4.json');
    writeFileSync(join(dir, 'm4.onnx'), 'model');
    writeFileSync(join(dir, 'i4.json'), oneInput);
    const r = infer(
      {
        state,
        model: join(dir, 'm4.onnx'),
        input: join(dir, 'i4.json'),
        out: join(dir, 'o4.json'),
        proof: join(dir, 'p4.json'),
      },
      '--escrow',
      '0,01',
    );
    expectUsefulError(r, '--escrow');
  });
});
