import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FirnError } from '@firn/core';
import { createLogger, NodeDaemon, type NodeDaemonOptions } from '@firn/node';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type NodeStartOptions,
  registerNode,
  retentionFromArgs,
} from '../../packages/cli/src/commands/node.ts';

// The attack: the operator's job terms (NodeDaemonOptions.jobPolicy) and artifact retention given
// a bad value. jobPolicy was taken as given: `minClaimSeconds: NaN` compares false against every
// job (BigInt(NaN) throws at the first check, failing every submission with E_INTERNAL), a negative
// or infinite minimum, or `minEscrowWei` as a number, started a node whose terms were not the
// ones asked for. A retention of NaN or 0 would delete uploads before their intent expired.
// Promise (decision 1603, as 1550 for the scheduler and quotas): refused at the NodeDaemon
// constructor with E_INVALID_INPUT naming the option; a value accepted is the one in force.

const dataDir = mkdtempSync(join(tmpdir(), 'firn-job-policy-values-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
const base: NodeDaemonOptions = {
  dataDir,
  bundlePath: join(dataDir, 'no-bundle.mjs'),
  enclaveEnv: { FIRN_TEE: 'simulated' },
  logger: createLogger({ component: 'node' }, { write: () => undefined }),
};

/** The options commander gives `firn node start` for `args` (the action is replaced: nothing starts). */
async function parsed(args: string[]): Promise<NodeStartOptions> {
  const program = new Command().exitOverride();
  registerNode(program);
  let got: NodeStartOptions | undefined;
  const start = program.commands
    .find((c) => c.name() === 'node')!
    .commands.find((c) => c.name() === 'start')!;
  start.action((o: NodeStartOptions) => {
    got = o;
  });
  await program.parseAsync(['node', 'start', ...args], { from: 'user' });
  return got!;
}

function refusal(f: () => unknown): FirnError | undefined {
  try {
    f();
  } catch (e) {
    return e as FirnError;
  }
  return undefined;
}

describe('attack: an operator job term or retention given a bad value', () => {
  const bad: [string, string, Partial<NodeDaemonOptions>][] = [
    [
      'jobPolicy.minClaimSeconds NaN',
      'jobPolicy.minClaimSeconds',
      { jobPolicy: { minClaimSeconds: Number.NaN } },
    ],
    [
      'jobPolicy.minClaimSeconds Infinity',
      'jobPolicy.minClaimSeconds',
      { jobPolicy: { minClaimSeconds: Number.POSITIVE_INFINITY } },
    ],
    ['jobPolicy.minClaimSeconds -1', 'jobPolicy.minClaimSeconds', { jobPolicy: { minClaimSeconds: -1 } }],
    ['jobPolicy.minClaimSeconds 1.5', 'jobPolicy.minClaimSeconds', { jobPolicy: { minClaimSeconds: 1.5 } }],
    ['jobPolicy.minEscrowWei -1n', 'jobPolicy.minEscrowWei', { jobPolicy: { minEscrowWei: -1n } }],
    [
      'jobPolicy.minEscrowWei NaN (a number)',
      'jobPolicy.minEscrowWei',
      { jobPolicy: { minEscrowWei: Number.NaN as unknown as bigint } },
    ],
    [
      'jobPolicy.minEscrowWei 5 (a number, not a bigint)',
      'jobPolicy.minEscrowWei',
      { jobPolicy: { minEscrowWei: 5 as unknown as bigint } },
    ],
    ['retention.uploadSeconds NaN', 'retention.uploadSeconds', { retention: { uploadSeconds: Number.NaN } }],
    [
      'retention.uploadSeconds 60 (under an upload intent lifetime)',
      'retention.uploadSeconds',
      { retention: { uploadSeconds: 60 } },
    ],
    [
      'retention.outputSeconds Infinity',
      'retention.outputSeconds',
      { retention: { outputSeconds: Number.POSITIVE_INFINITY } },
    ],
    ['retention.outputSeconds -1', 'retention.outputSeconds', { retention: { outputSeconds: -1 } }],
  ];
  for (const [what, name, opts] of bad)
    it(`NodeDaemonOptions ${what} is refused at the entry, naming the option`, () => {
      const e = refusal(() => new NodeDaemon({ ...base, ...opts }));
      expect(e).toBeInstanceOf(FirnError);
      expect(e?.code).toBe('E_INVALID_INPUT');
      expect(e?.message).toContain(`NodeDaemonOptions.${name}`);
    });

  it('values accepted are the terms in force; keys present as undefined keep the defaults', () => {
    const node = new NodeDaemon({
      ...base,
      jobPolicy: { minEscrowWei: 7n, minClaimSeconds: 0 },
      retention: { uploadSeconds: 3600, outputSeconds: undefined } as unknown as { uploadSeconds: number },
    });
    expect(node.jobPolicy).toEqual({ minEscrowWei: 7n, minClaimSeconds: 0 });
    expect(node.retention).toEqual({ uploadSeconds: 3600, outputSeconds: 7 * 86_400 });
    const defaults = new NodeDaemon({
      ...base,
      jobPolicy: { minClaimSeconds: undefined } as unknown as { minClaimSeconds: number },
    });
    expect(defaults.jobPolicy).toEqual({ minEscrowWei: 1n, minClaimSeconds: 60 });
  });

  it('the retention flags are whole seconds of at least an hour', async () => {
    expect(retentionFromArgs({ uploadRetention: '86400', outputRetention: '3600' })).toEqual({
      uploadSeconds: 86_400,
      outputSeconds: 3600,
    });
    expect(retentionFromArgs({})).toEqual({});
    expect(
      retentionFromArgs(await parsed(['--upload-retention', '7200', '--output-retention', '1209600'])),
    ).toEqual({ uploadSeconds: 7200, outputSeconds: 1_209_600 });
    for (const v of ['59', '0', '-5', '1e9', 'NaN', '3600.5'])
      expect(() => retentionFromArgs({ uploadRetention: v })).toThrow(/--upload-retention/);
    expect(() => retentionFromArgs({ outputRetention: '10' })).toThrow(/--output-retention/);
  });
});
