import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { build, type Plugin } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { buildEnclaveImage } from '../../packages/node/src/enclaveImage.ts';

// What ships must not carry test or demo code (decision 1230): the enclave image is everything
// that runs inside the TEE, the verifier daemon decides which evidence is accepted, and the
// requester SDK is what others install. Test fixtures, synthetic evidence generators, devnet
// demos and the simulated GPU's provisioning (the key of a device root) belong elsewhere.

const root = repoRoot();

/** One rule: a repository-relative module path that shipped code must not reach, and why. */
interface Rule {
  why: string;
  hits(path: string): boolean;
}

const TEST_AND_DEMO: Rule[] = [
  { why: 'a test fixture folder', hits: (p) => /^packages\/[^/]+\/test\//.test(p) || p.startsWith('tests/') },
  { why: 'a test file', hits: (p) => /\.test\.[cm]?[jt]s$/.test(p) },
  {
    why: 'a test-only helper',
    hits: (p) => /\/testing\//.test(p) || /\/(testModels|testVectors|synthetic[A-Z]\w*)\.ts$/.test(p),
  },
  { why: 'the test runner', hits: (p) => /(^|\/)node_modules\/(vitest|@vitest)\//.test(p) },
  { why: 'a devnet demo or the devnet itself', hits: (p) => p.startsWith('packages/cli/src/devnet/') },
  {
    why: "the simulated GPU's provisioning (device root keys)",
    hits: (p) => p.startsWith('packages/sim/') && p !== 'packages/sim/src/gpuDevice.ts',
  },
];
/**
 * The enclave sends no request to a URL a node chose: the client for those (undici, through
 * @firn/core/fetchFromNode, decision 1832) must not ride into the measured image with @firn/core.
 */
const NODE_FETCH: Rule = {
  why: 'the HTTP client for node-chosen URLs',
  hits: (p) => p === 'packages/core/src/fetchFromNode.ts' || p.startsWith('node_modules/undici/'),
};
/** The verifier and the SDK run no simulated device at all. */
const NO_SIMULATOR: Rule[] = [
  ...TEST_AND_DEMO,
  { why: 'the simulator (@firn/sim)', hits: (p) => p.startsWith('packages/sim/') },
];

/** `path (why)` for each module in `inputs` that a rule forbids, sorted. */
function violations(inputs: Iterable<string>, rules: Rule[]): string[] {
  const out: string[] = [];
  for (const p of inputs) {
    const rule = rules.find((r) => r.hits(p));
    if (rule) out.push(`${p} (${rule.why})`);
  }
  return out.sort();
}

/** Third-party packages stay external: only the workspace's own import graph is walked. */
const workspaceOnly: Plugin = {
  name: 'workspace-only',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (a) =>
      a.path.startsWith('@firn/') ? undefined : { path: a.path, external: true },
    );
  },
};

/**
 * The repository-relative source files an entry reaches (esbuild's metafile inputs), following
 * `@firn/*` through the workspace links and leaving npm packages external.
 */
async function importGraph(entry: { file: string } | { contents: string }): Promise<string[]> {
  const r = await build({
    ...('file' in entry
      ? { entryPoints: [entry.file] }
      : { stdin: { contents: entry.contents, resolveDir: root, loader: 'ts' as const } }),
    absWorkingDir: root,
    bundle: true,
    write: false,
    outdir: join(tmpdir(), 'firn-graph-unused'),
    platform: 'node',
    format: 'esm',
    logLevel: 'silent',
    metafile: true,
    plugins: [workspaceOnly],
  });
  return Object.keys(r.metafile.inputs);
}

/** Module paths esbuild names in a bundle's comments (`// packages/…`, `// node_modules/…`). */
function bundledModules(dir: string): string[] {
  const out = new Set<string>();
  for (const f of readdirSync(dir, { recursive: true }) as string[]) {
    if (!/\.(mjs|cjs|js)$/.test(f)) continue;
    for (const m of readFileSync(join(dir, f), 'utf8').matchAll(
      /^\/\/ ((?:packages|apps|tests|node_modules)\/\S+)$/gm,
    ))
      out.add(m[1]!);
  }
  return [...out];
}

describe('the checks catch a test helper in shipped code', () => {
  it('an entry that imports a test fixture, a synthetic quote maker or the GPU provisioning is named', async () => {
    const inputs = await importGraph({
      contents: [
        "export * from './packages/enclave/test/testModels.ts';",
        "export * from './packages/attestation/test/dcap/syntheticDcap.ts';",
        "export * from '@firn/sim';",
      ].join('\n'),
    });
    const v = violations(inputs, NO_SIMULATOR);
    expect(v).toContain('packages/enclave/test/testModels.ts (a test fixture folder)');
    expect(v).toContain('packages/attestation/test/dcap/syntheticDcap.ts (a test fixture folder)');
    expect(v).toContain(
      "packages/sim/src/simulatedGpu.ts (the simulated GPU's provisioning (device root keys))",
    );
    // The device alone is allowed in the enclave (a simulated TEE runs it), never in the verifier.
    expect(violations(['packages/sim/src/gpuDevice.ts'], TEST_AND_DEMO)).toEqual([]);
    expect(violations(['packages/sim/src/gpuDevice.ts'], NO_SIMULATOR)).toEqual([
      'packages/sim/src/gpuDevice.ts (the simulator (@firn/sim))',
    ]);
  });

  it('a bundle that carries vitest or a devnet demo is named from its module comments', () => {
    expect(
      violations(
        ['node_modules/vitest/dist/index.js', 'packages/cli/src/devnet/demo/inferenceDemo.ts'],
        TEST_AND_DEMO,
      ),
    ).toEqual([
      'node_modules/vitest/dist/index.js (the test runner)',
      'packages/cli/src/devnet/demo/inferenceDemo.ts (a devnet demo or the devnet itself)',
    ]);
  });
});

describe('shipped entry points reach no test, demo or provisioning module', () => {
  it("the verifier's import graph (packages/verifier/src/index.ts)", async () => {
    const inputs = await importGraph({ file: 'packages/verifier/src/index.ts' });
    expect(inputs).toContain('packages/attestation/src/appraiseEvidence.ts');
    expect(violations(inputs, NO_SIMULATOR)).toEqual([]);
  });

  it("the requester SDK's import graph (packages/client/src/index.ts)", async () => {
    const inputs = await importGraph({ file: 'packages/client/src/index.ts' });
    expect(inputs).toContain('packages/client/src/runJob.ts');
    expect(violations(inputs, NO_SIMULATOR)).toEqual([]);
  });

  it("the attestation library's import graph (packages/attestation/src/index.ts)", async () => {
    const inputs = await importGraph({ file: 'packages/attestation/src/index.ts' });
    expect(violations(inputs, NO_SIMULATOR)).toEqual([]);
  });

  describe('the enclave image as built', () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-shipped-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('every module bundled into the image', async () => {
      await buildEnclaveImage(join(dir, 'image'));
      const modules = bundledModules(join(dir, 'image'));
      // The scan sees the enclave program itself, so an empty list cannot pass for a clean one.
      expect(modules.some((m) => m.startsWith('packages/enclave/src/'))).toBe(true);
      expect(violations(modules, [...TEST_AND_DEMO, NODE_FETCH])).toEqual([]);
    }, 180_000);

    it("the enclave program's import graph (packages/enclave/src/main.ts)", async () => {
      const inputs = await importGraph({ file: 'packages/enclave/src/main.ts' });
      expect(inputs).toContain('packages/enclave/src/main.ts');
      expect(violations(inputs, TEST_AND_DEMO)).toEqual([]);
    });
  });
});
