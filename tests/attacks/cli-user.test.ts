import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AnvilInstance, startAnvil } from '@firn/chain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// A careless new user following the README: wrong paths, wrong RPC URL, wrong contract address,
// existing output files. Every error must name the cause the user can fix (never a bare
// E_INTERNAL), and no mistake may lose the user's keys or artifacts.
const bin = join(__dirname, '../../packages/cli/bin/firn.mjs');
const dir = mkdtempSync(join(tmpdir(), 'firn-careless-'));
let anvil: AnvilInstance;

function firn(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** The command failed, with a typed code other than E_INTERNAL, and its message names `cause`. */
function expectUsefulError(r: { code: number | null; out: string }, cause: string) {
  expect(r.code, r.out).not.toBe(0);
  expect(r.out).not.toMatch(/E_INTERNAL/);
  expect(r.out).toContain(cause);
}

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
    const state = join(dir, 'devnet.json');
    writeFileSync(
      state,
      JSON.stringify({
        rpcUrl: anvil.rpcUrl,
        chainId: 31337,
        contracts: { registry: `0x${'12'.repeat(20)}`, jobMarket: `0x${'13'.repeat(20)}` },
        accounts: { requester: { privateKey: `0x${'ab'.repeat(32)}` } },
      }),
    );
    const model = join(dir, 'no-such-model.onnx');
    writeFileSync(join(dir, 'in.json'), '{"x":{"dims":[1],"type":"float32","data":[1]}}');
    expectUsefulError(
      firn(
        'infer',
        '--devnet',
        state,
        '--model',
        model,
        '--input',
        join(dir, 'in.json'),
        '--out',
        join(dir, 'o.json'),
        '--proof',
        join(dir, 'p.json'),
      ),
      model,
    );
  });
  it('infer refuses an --out or --proof that already exists (here the model itself) before any escrow is paid', () => {
    const state = join(dir, 'devnet2.json');
    writeFileSync(
      state,
      JSON.stringify({
        rpcUrl: anvil.rpcUrl,
        chainId: 31337,
        contracts: { registry: `0x${'12'.repeat(20)}`, jobMarket: `0x${'13'.repeat(20)}` },
        accounts: { requester: { privateKey: `0x${'ab'.repeat(32)}` } },
      }),
    );
    const model = join(dir, 'mine.onnx');
    const input = join(dir, 'mine.json');
    writeFileSync(model, 'my only copy of the model');
    writeFileSync(input, '{"x":{"dims":[1],"type":"float32","data":[1]}}');
    // Flags swapped by mistake: the proof would be written over the model.
    const r = firn(
      'infer',
      '--devnet',
      state,
      '--model',
      model,
      '--input',
      input,
      '--out',
      join(dir, 'out.json'),
      '--proof',
      model,
    );
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
    const state = join(dir, 'devnet3.json');
    writeFileSync(
      state,
      JSON.stringify({
        rpcUrl: anvil.rpcUrl,
        chainId: 31337,
        contracts: { registry: `0x${'12'.repeat(20)}`, jobMarket: `0x${'13'.repeat(20)}` },
        accounts: { requester: { privateKey: `0x${'ab'.repeat(32)}` } },
      }),
    );
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
    const state = join(dir, 'devnet4.json');
    writeFileSync(
      state,
      JSON.stringify({
        rpcUrl: anvil.rpcUrl,
        chainId: 31337,
        contracts: { registry: `0x${'12'.repeat(20)}`, jobMarket: `0x${'13'.repeat(20)}` },
        accounts: { requester: { privateKey: `0x${'ab'.repeat(32)}` } },
      }),
    );
    writeFileSync(join(dir, 'm4.onnx'), 'model');
    writeFileSync(join(dir, 'i4.json'), '{"x":{"dims":[1],"type":"float32","data":[1]}}');
    const r = firn(
      'infer',
      '--devnet',
      state,
      '--model',
      join(dir, 'm4.onnx'),
      '--input',
      join(dir, 'i4.json'),
      '--out',
      join(dir, 'o4.json'),
      '--proof',
      join(dir, 'p4.json'),
      '--escrow',
      '0,01',
    );
    expectUsefulError(r, '--escrow');
  });
});
