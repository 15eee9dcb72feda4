import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { runJob } from '@firn/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModel } from '../../packages/cli/src/devnet/demo/inferenceDemo.ts';
import { startTestNetwork, stateOf, type TestNetwork } from './network.ts';

// The SDK as someone outside the repository gets it: built to ESM + .d.ts, packed with `npm pack`,
// installed from the tarballs into an empty folder (dependencies from the registry or npm's cache),
// and a job run against a devnet with plain `node`: no tsx, no workspace, no TypeScript sources.
const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'firn-pack-'));
const consumer = join(work, 'consumer');
const node22 = ['node22', '/usr/local/bin/node22'].find(
  (b) => spawnSync(b, ['--version'], { encoding: 'utf8' }).stdout?.startsWith('v22.') ?? false,
);
let net: TestNetwork;
let tarballs: string[] = [];
let stateFile: string;

// What a requester writes with the installed package (plain ESM; run by plain node).
const JOB_SCRIPT = `
import { readFileSync } from 'node:fs';
import { DEV_POLICY } from '@firn/attestation';
import { deploymentFromState, devnetRoots, loadDevnetState, runJob } from '@firn/client';
const state = loadDevnetState(process.argv[2]);
// The model is the requester's own file (the devnet demo's model, written by the test).
const model = new Uint8Array(readFileSync('model.onnx'));
const input = { features: { dims: [2, 4], type: 'float32', data: [0.1, 0.2, 0.3, 0.4, -1, 0.5, 2, -0.25] } };
const r = await runJob({
  rpcUrl: state.rpcUrl,
  deployment: deploymentFromState(state),
  requesterKey: state.accounts.requester.privateKey,
  policy: DEV_POLICY,
  ...devnetRoots(state),
  kind: 'inference',
  inputs: [
    { role: 'model', bytes: model, contentType: 'application/onnx' },
    { role: 'input', bytes: new TextEncoder().encode(JSON.stringify(input)), contentType: 'application/json' },
  ],
  params: {},
  escrow: 10n ** 16n,
});
process.stdout.write(JSON.stringify({
  resolved: import.meta.resolve('@firn/client'),
  jobId: r.jobId.toString(),
  proofCheck: r.proofCheck,
  output: JSON.parse(new TextDecoder().decode(r.outputs[0].bytes)),
}) + '\\n');
process.exit(0);
`;

beforeAll(async () => {
  const packed = run(process.execPath, [join(root, 'scripts', 'sdk-pack.mjs'), '--pack', join(work, 'tgz')], {
    cwd: root,
    maxBuffer: 16 << 20,
  });
  net = await startTestNetwork();
  const { stdout } = await packed;
  tarballs = JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]') as string[];
  stateFile = join(work, 'devnet.json');
  writeFileSync(stateFile, JSON.stringify(stateOf(net, net.rootPem)));
  // An empty project: nothing from the workspace reaches it but the tarballs.
  rmSync(consumer, { recursive: true, force: true });
  await run('mkdir', ['-p', consumer]);
  writeFileSync(join(consumer, 'package.json'), '{"name":"consumer","private":true,"type":"module"}\n');
  writeFileSync(join(consumer, 'job.mjs'), JOB_SCRIPT);
  writeFileSync(join(consumer, 'model.onnx'), demoModel());
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs], {
    cwd: consumer,
    maxBuffer: 16 << 20,
  });
}, 300_000);
afterAll(async () => {
  await net?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('the packed SDK', () => {
  it('packs each SDK package as compiled ESM with declarations, no TypeScript sources', () => {
    expect(tarballs.map((t) => t.split('/').at(-1))).toEqual(
      expect.arrayContaining([
        'firn-core-0.1.0.tgz',
        'firn-crypto-0.1.0.tgz',
        'firn-attestation-0.1.0.tgz',
        'firn-client-0.1.0.tgz',
      ]),
    );
    const client = join(consumer, 'node_modules', '@firn', 'client');
    const manifest = JSON.parse(readFileSync(join(client, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(manifest.exports).toEqual({
      '.': { types: './index.d.ts', import: './index.js', default: './index.js' },
      // The padding helpers alone (firn artifact imports them without the rest of the SDK).
      './padding': { types: './padding.d.ts', import: './padding.js', default: './padding.js' },
    });
    expect(manifest.private).toBeUndefined();
    for (const p of ['core', 'crypto', 'attestation', 'chain', 'ml', 'client']) {
      const files = readdirSync(join(consumer, 'node_modules', '@firn', p), { recursive: true }) as string[];
      expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
      expect(files.some((f) => f.endsWith('index.d.ts') || f.endsWith('formats.d.ts'))).toBe(true);
      // Test helpers do not ship.
      expect(files.filter((f) => f.includes('testing/') || f.endsWith('.test.js'))).toEqual([]);
    }
    // Declarations name the compiled files, so a consumer's tsc resolves them.
    expect(readFileSync(join(client, 'index.d.ts'), 'utf8')).toMatch(/from '\.\/runJob\.js'/);
  });

  it("type-checks a consumer's TypeScript against the installed declarations (strict, nodenext, no skipLibCheck)", async () => {
    writeFileSync(
      join(consumer, 'check.ts'),
      [
        "import { DEV_POLICY } from '@firn/attestation';",
        "import { type RunJobOptions, type RunJobResult, runJob } from '@firn/client';",
        "import type { Hex } from '@firn/core';",
        'export function go(o: Omit<RunJobOptions, "policy">, key: Hex): Promise<RunJobResult> {',
        '  return runJob({ ...o, requesterKey: key, policy: DEV_POLICY });',
        '}',
        '// @ts-expect-error: the declarations are real, so a wrong call is an error',
        'runJob({ rpcUrl: 1 });',
      ].join('\n'),
    );
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const flags = [
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
    ];
    const types = ['--typeRoots', join(root, 'node_modules', '@types'), '--types', 'node'];
    await run(process.execPath, [tsc, ...flags, ...types, 'check.ts'], { cwd: consumer, timeout: 120_000 });
  }, 150_000);

  const runIn = async (nodeBin: string) => {
    const { stdout } = await run(nodeBin, ['job.mjs', stateFile], { cwd: consumer, timeout: 120_000 });
    const r = JSON.parse(stdout.trim()) as {
      resolved: string;
      proofCheck: { ok: boolean; reasons: string[] };
      output: Record<string, { dims: number[]; data: number[] }>;
    };
    // The installed package answered, not the workspace's sources.
    expect(r.resolved).toBe(`file://${consumer}/node_modules/@firn/client/index.js`);
    expect(r.proofCheck).toEqual({ ok: true, reasons: [] });
    return r.output;
  };

  it('runs a confidential job against the devnet on plain node (this runtime)', async () => {
    const out = await runIn(process.execPath);
    // The same job through the workspace's sources gives the same decrypted output.
    const input = {
      features: { dims: [2, 4], type: 'float32', data: [0.1, 0.2, 0.3, 0.4, -1, 0.5, 2, -0.25] },
    };
    const { deploymentFromState, devnetRoots } = await import('@firn/client');
    const state = stateOf(net, net.rootPem);
    const r = await runJob({
      rpcUrl: state.rpcUrl,
      deployment: deploymentFromState(state as never),
      requesterKey: net.requester.privateKey,
      policy: net.policy,
      ...devnetRoots(state),
      kind: 'inference',
      inputs: [
        { role: 'model', bytes: demoModel(), contentType: 'application/onnx' },
        {
          role: 'input',
          bytes: new TextEncoder().encode(JSON.stringify(input)),
          contentType: 'application/json',
        },
      ],
      params: {},
      escrow: 10n ** 16n,
    });
    expect(out).toEqual(JSON.parse(new TextDecoder().decode(r.outputs[0]!.bytes)));
  }, 180_000);

  it.runIf(node22 !== undefined)(
    'runs the same job on Node 22',
    async () => {
      await runIn(node22!);
    },
    180_000,
  );
  it.runIf(node22 === undefined)(
    'Node 22: no node22 binary on this machine, so only this runtime was tried',
    () => {
      expect(existsSync('/usr/local/bin/node22')).toBe(false);
    },
  );
});
