import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** The dashboard's folder (apps/dashboard). */
export const DASHBOARD_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

/** One built asset served by the dashboard server. */
export interface DashboardAsset {
  contentType: string;
  body: Uint8Array;
}

/**
 * Bundle the page (src/main.ts with Preact, uPlot and viem, and its CSS) with esbuild, in memory:
 * nothing is downloaded and nothing is written to disk, so several dashboards may build at once.
 * Returns the assets by URL path ('/', '/assets/main.js', '/assets/main.css') and the build time, ms.
 * Throws esbuild's error when the sources do not compile.
 */
export async function buildDashboard(): Promise<{ assets: Map<string, DashboardAsset>; ms: number }> {
  const t0 = performance.now();
  const r = await build({
    entryPoints: [join(DASHBOARD_DIR, 'src', 'main.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
    minify: true,
    outdir: '/assets',
    entryNames: 'main',
    legalComments: 'none',
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const assets = new Map<string, DashboardAsset>();
  for (const f of r.outputFiles) {
    const name = f.path.slice(f.path.lastIndexOf('/'));
    const type = name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8';
    assets.set(`/assets${name}`, { contentType: type, body: f.contents });
  }
  assets.set('/', {
    contentType: 'text/html; charset=utf-8',
    body: readFileSync(join(DASHBOARD_DIR, 'index.html')),
  });
  return { assets, ms: Math.round(performance.now() - t0) };
}
