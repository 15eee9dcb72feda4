import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/**
 * Cycles among the relative imports of the non-test `.ts` files under `root/packages/<pkg>/src`,
 * `import type` and re-exports included (a type-only circle still ties two modules together), as
 * strongly connected components (Tarjan), each a sorted list of repository-relative paths.
 */
function importCycles(root: string): string[][] {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) {
        if (n !== 'node_modules') walk(p);
      } else if (n.endsWith('.ts') && !n.endsWith('.test.ts') && !n.endsWith('.d.ts')) files.push(p);
    }
  };
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const src = join(root, 'packages', pkg, 'src');
    if (statSync(src, { throwIfNoEntry: false })?.isDirectory()) walk(src);
  }
  const known = new Set(files);
  const spec = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]/g;
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const deps = [...readFileSync(f, 'utf8').matchAll(spec)].map((m) => resolve(dirname(f), m[1]!));
    graph.set(
      f,
      deps.filter((d) => known.has(d)),
    );
  }
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || graph.get(v)!.includes(v))
        out.push(scc.map((f) => relative(root, f).split('\\').join('/')).sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

/**
 * Circles outside this package that are known and owned elsewhere (type-only); a new circle, or
 * any circle in packages/node, fails the test.
 */
const KNOWN_ELSEWHERE = [['packages/enclave/src/enclaveProgram.ts', 'packages/enclave/src/liveness.ts']];

describe('imports point one way', () => {
  it('no import circle in packages/*/src (packages/node none at all; nodeDaemon -> http -> jobs)', () => {
    const cycles = importCycles(REPO);
    expect(cycles.filter((c) => c.some((f) => f.startsWith('packages/node/')))).toEqual([]);
    const key = (c: string[]) => c.join(' <-> ');
    const known = new Set(KNOWN_ELSEWHERE.map(key));
    expect(cycles.map(key).filter((k) => !known.has(k))).toEqual([]);
  });

  it('the check finds a circle, a type-only one and one through a re-export', () => {
    const root = mkdtempSync(join(tmpdir(), 'firn-cycles-'));
    const src = join(root, 'packages', 'p', 'src');
    mkdirSync(join(src, 'jobs'), { recursive: true });
    writeFileSync(
      join(src, 'daemon.ts'),
      "import { Service } from './jobs/service.ts';\nexport const d = Service;\n",
    );
    writeFileSync(
      join(src, 'jobs', 'service.ts'),
      "import type { D } from '../daemon.ts';\nexport class Service {}\n",
    );
    writeFileSync(join(src, 'a.ts'), "export * from './b.ts';\n");
    writeFileSync(join(src, 'b.ts'), "export { a } from './a.ts';\n");
    writeFileSync(join(src, 'c.ts'), "import { d } from './daemon.ts';\nexport const c = d;\n");
    writeFileSync(join(src, 'c.test.ts'), "import { c } from './c.ts';\nimport './c.test.ts';\n");
    expect(importCycles(root).sort()).toEqual([
      ['packages/p/src/a.ts', 'packages/p/src/b.ts'],
      ['packages/p/src/daemon.ts', 'packages/p/src/jobs/service.ts'],
    ]);
  });
});
