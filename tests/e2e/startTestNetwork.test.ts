/**
 * startTestNetwork's own clean-up: when a set-up step fails after anvil, the verifiers and the node
 * (with its enclave process) have started, the failure must not leave any of them running for the
 * rest of the test process (a leaked anvil or enclave holds a port, a core and memory until the
 * worker exits). Each case fails the set-up at one step and checks that no process it started is
 * left under this one, that every verifier daemon was stopped and its temp dirs removed.
 */
import { existsSync } from 'node:fs';
import type { VerifierDaemon } from '@firn/verifier';
import { describe, expect, it, type MockInstance, vi } from 'vitest';
import { comm, descendants, running } from '../helpers/processTree.ts';
import { startTestNetwork, type TestNetworkStarted, type TestNetworkStep } from './network.ts';

async function failAt(step: TestNetworkStep) {
  const before = new Set(descendants(process.pid));
  let seen: TestNetworkStarted | undefined;
  let enclavePid: number | undefined;
  const stops: MockInstance<VerifierDaemon['stop']>[] = [];
  const failure = new Error(`set-up step after '${step}' failed`);
  await expect(
    startTestNetwork({
      afterStep: (s, started) => {
        if (s !== step) return;
        seen = started;
        enclavePid = started.node?.supervisor.pid;
        for (const v of started.verifiers) stops.push(vi.spyOn(v, 'stop'));
        throw failure;
      },
    }),
  ).rejects.toBe(failure);
  if (!seen) throw new Error(`the set-up never reached '${step}'`);
  // esbuild's service process (the enclave bundle build) is the one exception: esbuild starts it
  // once per process, every later build in this process reuses it, and it ends with the process.
  const left = descendants(process.pid)
    .filter((p) => !before.has(p) && running(p))
    .map((p) => `${p} ${comm(p)}`)
    .filter((p) => !p.endsWith(' esbuild'));
  return { seen, enclavePid, stops, left };
}

describe('startTestNetwork stops what it started when a later step fails', () => {
  it('after the node registered: anvil, both verifiers, the node and its enclave are stopped', async () => {
    const { seen, enclavePid, stops, left } = await failAt('registered');
    expect(enclavePid, 'the node had started its enclave').toBeTypeOf('number');
    expect(running(seen.anvil.pid), 'anvil left running').toBe(false);
    expect(running(enclavePid!), 'the enclave left running').toBe(false);
    expect(left, 'processes the failed set-up left behind').toEqual([]);
    expect(stops).toHaveLength(2);
    for (const s of stops) expect(s).toHaveBeenCalled();
    expect(existsSync(seen.node!.opts.dataDir), "the node's data dir was removed").toBe(false);
  }, 180_000);

  it('after the verifiers started, before any node: anvil and the verifiers are stopped', async () => {
    const { seen, stops, left } = await failAt('verifiers');
    expect(seen.node).toBeUndefined();
    expect(running(seen.anvil.pid), 'anvil left running').toBe(false);
    expect(left, 'processes the failed set-up left behind').toEqual([]);
    expect(stops).toHaveLength(2);
    for (const s of stops) expect(s).toHaveBeenCalled();
  }, 180_000);
});
