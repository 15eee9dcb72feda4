/**
 * Artifact sweep drain rate (decision 1640): how fast the node releases one address's backlog of
 * expired one-block uploads, against the floor of doing the same work by hand.
 *
 * Both sides start from the same store: N one-byte files, each with its charge record (as the
 * upload path writes them), all expired. firn: `ArtifactSweeper.sweep` at its default time budget
 * (50 ms) until nothing is left, as the node runs it (one budget per 5 s tick while a backlog
 * lasts). Peer: a loop that unlinks each file and deletes its record, 32 records per transaction
 * (what a visit does), with no expiry check, queue or ledger: the least work a deletion can cost
 * here. Reported: deletions per CPU second of each (process CPU, so the load of other processes
 * counts less than in wall time), the ratio (goal >= 0.5), and the hours a 1,048,576-record backlog
 * (one address's 4 GiB quota in one-byte uploads) takes at the deletions one 50 ms sweep made and
 * one sweep per 5 s tick (goal <= 24: within the default upload retention).
 *
 * Run: `npm run bench -- sweep` or `node packages/cli/bin/run-ts.mjs bench/sweep.ts [--records N]`.
 */
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hex } from '@firn/core';
import { ArtifactSweeper, SWEEP_TIME_BUDGET_MS } from '../packages/node/src/storage/artifactRetention.ts';
import { ArtifactStore } from '../packages/node/src/storage/artifactStore.ts';
import { NodeDb } from '../packages/node/src/storage/nodeDb.ts';
import { QuotaLedger } from '../packages/node/src/storage/quota.ts';
import { reportBench } from './report.ts';

const arg = process.argv.indexOf('--records');
const N = arg > 0 ? Number(process.argv[arg + 1]) : 20_000;
const OWNER = `0x${'ab'.repeat(20)}`;
/** The node's loop sweeps at every finalizer tick while a backlog lasts (jobApi.ts). */
const TICK_S = 5;
const loadBefore = loadavg();
const root = mkdtempSync(join(tmpdir(), 'firn-bench-sweep-'));

/** A store of N expired one-byte artifacts of OWNER, charged as the upload path charges them. */
function fill(name: string) {
  const dir = join(root, name);
  const db = new NodeDb(dir);
  const store = new ArtifactStore(dir);
  const quota = new QuotaLedger(
    dir,
    store.dir,
    { perAddressBytes: 2 ** 40, totalBytes: 2 ** 40 },
    { book: db, now: () => 0 },
  );
  const ids: Hex[] = [];
  db.db.transaction(() => {
    for (let i = 0; i < N; i++) {
      const id = `0x${(i + 1).toString(16).padStart(64, '0')}` as Hex;
      writeFileSync(store.path(id), 'x');
      quota.reserve(OWNER, 1).commit(true, 1, id);
      ids.push(id);
    }
  })();
  return { db, store, quota, ids };
}

/** Process CPU seconds (user + system) that `f` took. */
function cpu(f: () => void): number {
  const a = process.cpuUsage();
  f();
  const b = process.cpuUsage(a);
  return (b.user + b.system) / 1e6;
}

const firn = fill('firn');
const sweeper = new ArtifactSweeper(firn.store, firn.quota, firn.db);
let sweeps = 0;
const firnCpu = cpu(() => {
  for (;;) {
    sweeps++;
    const r = sweeper.sweep(sweeper.retention.uploadSeconds, SWEEP_TIME_BUDGET_MS);
    if (!r.more) break;
  }
});
if (firn.quota.usedBy(OWNER) !== 0) throw new Error(`firn left ${firn.quota.usedBy(OWNER)} bytes charged`);
firn.db.close();

const peer = fill('peer');
const drop = peer.db.db.prepare('DELETE FROM artifact_charges WHERE artifact_id = ?');
const peerCpu = cpu(() => {
  for (let i = 0; i < peer.ids.length; i += 32) {
    const page = peer.ids.slice(i, i + 32);
    for (const id of page) unlinkSync(peer.store.path(id));
    peer.db.db.transaction(() => {
      for (const id of page) drop.run(id);
    })();
  }
});
peer.db.close();
rmSync(root, { recursive: true, force: true });

const firnRate = N / firnCpu;
const peerRate = N / peerCpu;
const perSweep = N / sweeps;
const backlog = 1_048_576;
const drainHours = ((backlog / perSweep) * TICK_S) / 3600;
const r = {
  records: N,
  sweeps,
  deletionsPerSweep: Math.round(perSweep),
  firnDeletionsPerCpuSecond: Math.round(firnRate),
  peerDeletionsPerCpuSecond: Math.round(peerRate),
  drainHoursFor1MRecords: Number(drainHours.toFixed(2)),
};
process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
reportBench(
  'sweep',
  r,
  [
    { name: 'sweep_deletions_per_cpu_vs_floor', value: firnRate / peerRate, cmp: '>=', goal: 0.5 },
    // One address's whole quota of expired one-byte uploads is released within the upload retention's default (a day).
    { name: 'sweep_drain_hours_1m_records', value: drainHours, cmp: '<=', goal: 24 },
  ],
  { loadBefore },
);
