/**
 * Gas of the contracts' normal paths (issue 15): runs the forge gas report of
 * contracts/test/gas/FirnGasPaths.t.sol, where every call succeeds and is what an honest network
 * does (register and activate, post open and bound jobs, claim, submitProof, finalize, a finding
 * dispute by a quorum, a liveness answer), with the devnet's registration and protocol fees.
 * Forge runs each call as its own transaction in a gas report: cold storage, with the 21,000
 * intrinsic gas and the calldata cost included. The figure per function is the report's mean over
 * those calls. See docs/decisions/1140-contract-gas.md.
 *
 * Prints one `ratio gas.NAME VALUE GOAL met|missed` line per target (VALUE and GOAL in gas, met when
 * VALUE <= GOAL), the other paths as `gas.NAME VALUE (before BEFORE)`, and writes the whole report
 * to bench/results/gas.json.
 * Run: node packages/cli/bin/run-ts.mjs bench/gas.ts
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { reportBench } from './report.ts';
import { repoRoot } from '@firn/core';

/** Issue 15's targets (mean gas per call). */
const GOALS: Record<string, number> = { register: 200_000, submitProof: 60_000, postJob: 120_000 };
/** The functions reported, by contract. */
const PATHS: Record<string, [contract: string, selectorPrefix: string]> = {
  register: ['FirnRegistry', 'register('],
  approve: ['FirnRegistry', 'approve('],
  postJob: ['FirnJobMarket', 'postJob('],
  claimJob: ['FirnJobMarket', 'claimJob('],
  submitProof: ['FirnJobMarket', 'submitProof('],
  dispute: ['FirnJobMarket', 'dispute('],
  finalize: ['FirnJobMarket', 'finalize('],
  answerChallenge: ['FirnRewards', 'answerChallenge('],
};
/**
 * The same normal paths on the contracts before issue 15 (commit 3400a1d, the same scenario written
 * against the old calldata), measured with this report; see the decision's table.
 */
const BEFORE: Record<string, number> = {
  register: 376_241,
  approve: 193_077,
  postJob: 217_603,
  claimJob: 167_248,
  submitProof: 166_120,
  dispute: 167_153,
  finalize: 93_997,
  answerChallenge: 178_052,
};

interface FnGas {
  calls: number;
  min: number;
  mean: number;
  median: number;
  max: number;
}
interface ContractGas {
  contract: string;
  functions: Record<string, FnGas>;
}

const root = repoRoot();
const t0 = performance.now();
const r = spawnSync(
  process.execPath,
  [join(root, 'scripts', 'forge.mjs'), 'test', '--match-contract', 'FirnGasPaths', '--gas-report', '--json'],
  { cwd: join(root, 'contracts'), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
);
if (r.status !== 0) {
  process.stderr.write(r.stderr ?? '');
  process.stderr.write(`forge gas report failed with status ${r.status}\n`);
  process.exit(1);
}
// forge prints the JSON report as one line starting with '['.
const line = r.stdout.split('\n').find((l) => l.startsWith('['));
if (!line) {
  process.stderr.write('no JSON gas report in the forge output\n');
  process.exit(1);
}
const report = JSON.parse(line) as ContractGas[];

const results: Record<string, FnGas & { before: number; goal?: number; met?: boolean }> = {};
for (const [name, [contract, prefix]] of Object.entries(PATHS)) {
  const c = report.find((x) => x.contract.endsWith(`:${contract}`));
  const entry = c && Object.entries(c.functions).find(([sig]) => sig.startsWith(prefix));
  if (!entry) {
    process.stderr.write(`no gas figure for ${contract}.${prefix}…) in the report\n`);
    process.exit(1);
  }
  const fn = entry[1];
  const goal = GOALS[name];
  results[name] = {
    ...fn,
    before: BEFORE[name] ?? 0,
    ...(goal !== undefined ? { goal, met: fn.mean <= goal } : {}),
  };
}

process.stdout.write(
  'forge gas report of the normal paths (mean gas per call, each call its own transaction)\n',
);
for (const [name, v] of Object.entries(results)) {
  if (v.goal === undefined) {
    process.stdout.write(
      `gas.${name} ${Math.round(v.mean)} (before ${v.before}, median ${v.median}, ${v.calls} calls)\n`,
    );
  }
}
for (const [name, v] of Object.entries(results)) {
  if (v.goal !== undefined) {
    process.stdout.write(
      `gas.${name} ${Math.round(v.mean)} (before ${v.before}, median ${v.median}, ${v.calls} calls)\n`,
    );
  }
}
reportBench(
  'gas',
  {
    source: 'forge test --match-contract FirnGasPaths --gas-report --json (each call its own transaction)',
    seconds: (performance.now() - t0) / 1000,
    results,
    report,
  },
  Object.entries(results)
    .filter(([, v]) => v.goal !== undefined)
    .map(([name, v]) => ({
      name: `gas.${name}`,
      value: Math.round(v.mean),
      cmp: '<=' as const,
      goal: v.goal!,
    })),
);
