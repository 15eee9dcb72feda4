import { readdirSync, rmSync } from 'node:fs';
import type { Workload } from '@firn/app';
import { afterAll, describe, expect, it } from 'vitest';
import { createAppProgram, oneOutput as out } from '../../test/appProgram.ts';

// Attack (a workload, or a requester's data that makes it emit more than it said): a job declares
// a small output bound, so the node reserves only that much storage before its claim, then emits
// more. Safe outcome: the enclave fails the job E_TOO_LARGE before any output reaches the host's
// disk, so the node never stores past what it reserved (decision 1690).
const NOW = 1_750_000_000;
const K = 4096;
const workloads: Record<string, Workload> = {
  // Past the bound in plaintext already.
  async over() {
    return out(new Uint8Array(K + 1));
  },
  // Exactly the bound in plaintext: its sealed form (header, tag) takes a second block.
  async exact() {
    return out(new Uint8Array(K));
  },
  // Two outputs of one block each once sealed: over a one-block bound together.
  async two() {
    return {
      outputs: [
        { role: 'a', contentType: 'application/octet-stream', bytes: new Uint8Array(1000) },
        { role: 'b', contentType: 'application/octet-stream', bytes: new Uint8Array(1000) },
      ],
      workUnits: 1n,
    };
  },
  async fits() {
    return out(new Uint8Array(3000));
  },
};
const { dir, run } = await createAppProgram({ workloads, now: NOW, prefix: 'firn-output-bound-' });
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const bound = (n: number) => ({ request: { maxOutputBytes: n }, extra: { maxOutputBytes: n } });

describe("a job's declared output bound", () => {
  for (const kind of ['over', 'exact', 'two'])
    it(`a workload emitting more than the bound (${kind}) fails E_TOO_LARGE and writes nothing`, async () => {
      const before = readdirSync(dir).length;
      await expect(run(kind, bound(K))).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
      // Only the sealed input of this run was added; no output (nor a .part) reached the host's disk.
      expect(readdirSync(dir).length).toBe(before + 1);
    });

  it('outputs within the bound are sealed and returned', async () => {
    const r = await run('fits', bound(K));
    expect(r.outputs).toHaveLength(1);
    expect(r.outputs[0]!.size).toBeLessThanOrEqual(K);
    // The same job with a larger bound is not held to the smaller one.
    expect((await run('exact', bound(2 * K))).outputs).toHaveLength(1);
  });

  it('a job that declares none is held only to the enclave caps (as before)', async () => {
    expect((await run('exact')).outputs).toHaveLength(1);
  });

  it('a host that reserved for another bound than the request declares is refused before the run', async () => {
    // The host names none (it reserved one block) for a request declaring 1 MiB, and the reverse.
    await expect(run('fits', { request: { maxOutputBytes: 1 << 20 } })).rejects.toMatchObject({
      code: 'E_JOB_INVALID',
    });
    await expect(run('fits', { extra: { maxOutputBytes: 1 << 20 } })).rejects.toMatchObject({
      code: 'E_JOB_INVALID',
    });
    await expect(
      run('fits', { request: { maxOutputBytes: 1 << 20 }, extra: { maxOutputBytes: K } }),
    ).rejects.toMatchObject({ code: 'E_JOB_INVALID' });
  });

  it('a bound outside 4096..2 GiB is refused as invalid', async () => {
    await expect(run('fits', bound(100))).rejects.toMatchObject({ code: 'E_JOB_INVALID' });
    await expect(run('fits', bound(2 ** 31 + 1))).rejects.toMatchObject({ code: 'E_JOB_INVALID' });
  });
});
