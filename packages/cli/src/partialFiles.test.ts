import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFilesAtomically } from './commands/infer.ts';
import {
  isPartialName,
  PARTIAL_MAX_IDLE_MS,
  partialHostTag,
  partialPathFor,
  removeAbandonedPartials,
} from './partialFiles.ts';

// Decision 1542: the CLI's temp files name their writer, and a later write into the same folder
// removes those whose writer is gone, and only those.
const TAG = partialHostTag();
const fresh = () => mkdtempSync(join(tmpdir(), 'firn-partial-'));
/** A pid that ran here and has exited (a finished child, reaped). */
const deadPid = (): number => spawnSync(process.execPath, ['-e', '0']).pid!;

describe('partial files', () => {
  it('are named after the target, this host and this process', () => {
    const p = partialPathFor('/x/out.bin');
    expect(p).toMatch(
      new RegExp(`^/x/out\\.bin\\.firn-partial\\.${TAG}\\.${process.pid}\\.[0-9a-f]{12}\\.tmp$`),
    );
    expect(isPartialName(p)).toBe(true);
    expect(partialPathFor('/x/out.bin')).not.toBe(p);
    expect(isPartialName('out.bin.0123456789ab.tmp')).toBe(false);
  });

  it("removes a dead writer's partial, keeps a live writer's, this process's and other files", () => {
    const dir = fresh();
    const dead = `o.bin.firn-partial.${TAG}.${deadPid()}.aaaaaaaaaaaa.tmp`;
    const live = `o.bin.firn-partial.${TAG}.${process.ppid}.bbbbbbbbbbbb.tmp`;
    const mine = basename(partialPathFor(join(dir, 'o.bin')));
    const others = ['o.bin', 'o.bin.0123456789ab.tmp', `o.bin.firn-partial.${TAG}.1.cccccccccccc`];
    for (const f of [dead, live, mine, ...others]) writeFileSync(join(dir, f), 'partial plaintext');
    expect(removeAbandonedPartials(dir)).toEqual([join(dir, dead)]);
    expect(readdirSync(dir).sort()).toEqual([live, mine, ...others].sort());
  });

  it("judges another host's partial by its age only", () => {
    const dir = fresh();
    const other = 'ffffffff' === TAG ? '00000000' : 'ffffffff';
    const pid = deadPid();
    const young = `a.firn-partial.${other}.${pid}.aaaaaaaaaaaa.tmp`;
    const old = `b.firn-partial.${other}.${pid}.bbbbbbbbbbbb.tmp`;
    for (const f of [young, old]) writeFileSync(join(dir, f), 'x');
    const past = (Date.now() - PARTIAL_MAX_IDLE_MS - 60_000) / 1000;
    utimesSync(join(dir, old), past, past);
    expect(removeAbandonedPartials(dir)).toEqual([join(dir, old)]);
    expect(readdirSync(dir)).toEqual([young]);
  });

  it('removes a partial unmodified past the bound even when its pid runs (a reused pid)', () => {
    const dir = fresh();
    const f = `o.firn-partial.${TAG}.${process.ppid}.aaaaaaaaaaaa.tmp`;
    writeFileSync(join(dir, f), 'x');
    expect(removeAbandonedPartials(dir, { now: Date.now() + PARTIAL_MAX_IDLE_MS - 60_000 })).toEqual([]);
    expect(removeAbandonedPartials(dir, { now: Date.now() + PARTIAL_MAX_IDLE_MS + 60_000 })).toEqual([
      join(dir, f),
    ]);
  });

  it('leaves a link or a folder of that name alone, and a folder it cannot read is no error', () => {
    const dir = fresh();
    const target = join(dir, 'precious');
    writeFileSync(target, 'keep');
    const pid = deadPid();
    symlinkSync(target, join(dir, `l.firn-partial.${TAG}.${pid}.aaaaaaaaaaaa.tmp`));
    mkdirSync(join(dir, `d.firn-partial.${TAG}.${pid}.bbbbbbbbbbbb.tmp`));
    expect(removeAbandonedPartials(dir)).toEqual([]);
    expect(readdirSync(dir)).toHaveLength(3);
    expect(removeAbandonedPartials(join(dir, 'no-such-folder'))).toEqual([]);
  });

  it("firn infer's all-or-nothing write removes a killed writer's partial beside its outputs", () => {
    const dir = fresh();
    const dead = `out.json.firn-partial.${TAG}.${deadPid()}.aaaaaaaaaaaa.tmp`;
    writeFileSync(join(dir, dead), '{"partial":');
    writeFilesAtomically([
      { path: join(dir, 'out.json'), bytes: '{}' },
      { path: join(dir, 'proof.json'), bytes: '{}' },
    ]);
    expect(readdirSync(dir).sort()).toEqual(['out.json', 'proof.json']);
  });
});
