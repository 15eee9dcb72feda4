/**
 * DCAP quote verification: firn against the reference verifiers @phala/dcap-qvl (pure JS) and
 * @phala/dcap-qvl-web (the Rust core compiled to wasm), on the same real quotes and collateral,
 * in one run. "cold" clears every firn cache before each verification (X.509 and collateral are
 * parsed and checked again); "warm" reuses parsed and verified collateral and chains, so only the
 * time-dependent checks and the QE report and quote signatures run. The references keep no cache.
 *
 * Run: node packages/cli/bin/run-ts.mjs bench/dcap.ts  [--iterations N]
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { sharedPath } from '@firn/core';
import { clearDcapCaches, verifyDcapQuoteSync } from '../packages/attestation/src/dcap/index.ts';

const require = createRequire(import.meta.url);
const qvlJs = require('@phala/dcap-qvl') as {
  verify(q: Uint8Array, c: unknown, now: number): { status: string; advisory_ids: string[] };
};
const wasmPkg = await import('@phala/dcap-qvl-web');
wasmPkg.initSync({ module: readFileSync(require.resolve('@phala/dcap-qvl-web/dcap-qvl-web_bg.wasm')) });

const V = (p: string) => sharedPath('vectors', 'attestation', 'phala-dcap-qvl', p);
const CASES = [
  {
    name: 'SGX v3 (phala sgx_quote)',
    quote: V('sgx_quote'),
    collateral: V('sgx_quote_collateral.json'),
    now: 1752919277,
  },
  {
    name: 'TDX v4 (phala tdx_quote)',
    quote: V('tdx_quote'),
    collateral: V('tdx_quote_collateral.json'),
    now: 1752919234,
  },
];

const argIdx = process.argv.indexOf('--iterations');
const N = argIdx > 0 ? Number(process.argv[argIdx + 1]) : 300;

function time(n: number, f: () => void): number {
  for (let i = 0; i < Math.min(20, n); i++) f(); // warm the JIT, not the caches (f clears them if cold)
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f();
  return ((performance.now() - t0) * 1000) / n; // µs per verification
}

const fmt = (us: number) => `${us.toFixed(1).padStart(9)} µs`;
const rows: string[] = [];
let allSame = true;
for (const c of CASES) {
  const quote = new Uint8Array(readFileSync(c.quote));
  const collateral = JSON.parse(readFileSync(c.collateral, 'utf8')) as Record<string, unknown>;

  const firn = verifyDcapQuoteSync(quote, { collateral, now: c.now });
  const js = qvlJs.verify(quote, collateral, c.now);
  const wasm = wasmPkg.js_verify(quote, collateral, BigInt(c.now)) as {
    status: string;
    advisory_ids: string[];
  };
  const same = (r: { status: string; advisory_ids: string[] }) =>
    r.status === firn.tcbStatus &&
    JSON.stringify([...r.advisory_ids].sort()) === JSON.stringify([...firn.advisoryIds].sort());
  const verdicts = same(js) && same(wasm);
  allSame &&= verdicts;

  const firnCold = time(Math.max(20, N / 5), () => {
    clearDcapCaches();
    verifyDcapQuoteSync(quote, { collateral: JSON.parse(JSON.stringify(collateral)), now: c.now });
  });
  const firnWarm = time(N * 5, () => verifyDcapQuoteSync(quote, { collateral, now: c.now }));
  const jsT = time(Math.max(20, N / 5), () => qvlJs.verify(quote, collateral, c.now));
  const wasmT = time(N, () => wasmPkg.js_verify(quote, collateral, BigInt(c.now)));

  rows.push(
    `${c.name}: status ${firn.tcbStatus} [${firn.advisoryIds.join(', ')}]; verdicts ${verdicts ? 'identical' : 'DIFFER'} (dcap-qvl ${js.status}, wasm ${wasm.status})`,
    `  firn cold (no caches)      ${fmt(firnCold)}`,
    `  firn warm (cached coll.)   ${fmt(firnWarm)}`,
    `  @phala/dcap-qvl (JS)       ${fmt(jsT)}`,
    `  @phala/dcap-qvl-web (wasm) ${fmt(wasmT)}`,
    `  ratios: wasm/firn-warm ${(wasmT / firnWarm).toFixed(1)}x, wasm/firn-cold ${(wasmT / firnCold).toFixed(2)}x, js/firn-warm ${(jsT / firnWarm).toFixed(1)}x, js/firn-cold ${(jsT / firnCold).toFixed(2)}x`,
  );
}
process.stdout.write(
  `DCAP verification, ${N} iterations base, node ${process.version}\n${rows.join('\n')}\n`,
);
if (!allSame) process.exitCode = 1;
