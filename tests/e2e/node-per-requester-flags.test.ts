import { randomBytes } from 'node:crypto';
import { NodeApi } from '@firn/client';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  byteSizeArg,
  type NodeStartOptions,
  quotasFromArgs,
  registerNode,
  schedulerFromArgs,
} from '../../packages/cli/src/commands/node.ts';
import { startTestNetwork, type TestNetwork } from './network.ts';

// Decision 1550's per-requester limits (jobs, sessions, disk per address) as `firn node start`
// flags and NodeDaemonOptions: parsed and checked at the entry, then in force on a running node.

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

describe('firn node start per-requester flags', () => {
  it('parse into the scheduler and quotas the daemon takes', async () => {
    const o = await parsed([
      '--max-jobs-per-requester',
      '2',
      '--max-sessions-per-requester',
      '1',
      '--quota-per-address',
      '8KiB',
      '--quota-total',
      '1GiB',
    ]);
    expect(schedulerFromArgs(o)).toEqual({ maxJobsPerRequester: 2, maxSessionsPerRequester: 1 });
    expect(quotasFromArgs(o)).toEqual({ perAddressBytes: 8192, totalBytes: 1024 ** 3 });
    expect(schedulerFromArgs(await parsed([]))).toEqual({});
    expect(quotasFromArgs(await parsed([]))).toEqual({});
  });

  it('refuse a bad value naming the flag', async () => {
    for (const [flag, v] of [
      ['--max-jobs-per-requester', '0'],
      ['--max-sessions-per-requester', 'many'],
      ['--max-jobs-per-requester', '-1'],
    ] as const)
      expect(() => schedulerFromArgs(parsedSync(flag, v))).toThrow(
        new RegExp(`^${flag} must be a positive whole number`),
      );
    for (const [flag, v] of [
      ['--quota-per-address', '4GB'],
      ['--quota-per-address', '1.5GiB'],
      ['--quota-total', '100'],
      ['--quota-total', '9999999TiB'],
    ] as const)
      expect(() => quotasFromArgs(parsedSync(flag, v))).toThrow(new RegExp(`^${flag} must be a size`));
    expect(() => quotasFromArgs({ quotaPerAddress: '2GiB', quotaTotal: '1GiB' } as NodeStartOptions)).toThrow(
      /--quota-per-address .* must not exceed --quota-total/,
    );
    expect(byteSizeArg('4096', '--x')).toBe(4096);
    expect(byteSizeArg('3 mib', '--x')).toBe(3 * 1024 ** 2);
  });

  it('are documented in the help text', () => {
    const program = new Command();
    registerNode(program);
    const start = program.commands
      .find((c) => c.name() === 'node')!
      .commands.find((c) => c.name() === 'start')!;
    const help = start.helpInformation();
    for (const flag of [
      '--max-jobs-per-requester',
      '--max-sessions-per-requester',
      '--quota-per-address',
      '--quota-total',
    ])
      expect(help).toContain(flag);
  });
});

const parsedSync = (flag: string, v: string): NodeStartOptions => {
  const key = flag.slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
  return { [key]: v } as unknown as NodeStartOptions;
};

describe('a node started with per-requester limits', () => {
  let net: TestNetwork;
  beforeAll(async () => {
    net = await startTestNetwork({
      scheduler: { maxJobsPerRequester: 1, maxSessionsPerRequester: 1 },
      quotas: { perAddressBytes: 8192 },
    });
  }, 120_000);
  afterAll(() => net?.stop());

  it('holds a requester to them: one job admitted, one session, 8 KiB of uploads', async () => {
    const jobs = net.node.jobs!;
    expect(jobs.admission.perRequester).toBe(1);
    expect(jobs.sessions.bounds.maxSessionsPerRequester).toBe(1);
    const leave = jobs.admission.enter(net.requester.address);
    try {
      expect(() => jobs.admission.check(net.requester.address)).toThrow(/per-requester limit/);
      jobs.admission.check(`0x${'12'.repeat(20)}`); // another requester is still admitted
    } finally {
      leave();
    }
    // The disk quota per address, through the node's own upload route.
    const api = new NodeApi(net.node.url, 30_000, {
      requesterKey: net.requester.privateKey,
      scope: {
        chainId: net.deployment.chainId,
        jobMarket: net.deployment.jobMarket,
        enclaveId: net.node.identity!.enclaveId,
      },
    });
    await api.uploadArtifact(randomBytes(4000));
    await expect(api.uploadArtifact(randomBytes(8000))).rejects.toMatchObject({
      code: 'E_QUOTA_EXCEEDED',
      message: expect.stringContaining('quotas.perAddressBytes'),
    });
  }, 60_000);
});
