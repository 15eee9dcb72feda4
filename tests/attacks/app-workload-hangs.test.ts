import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Hex } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAppEnclave, sealAppJob, stopAppEnclaves } from '../../packages/node/test/appEnclave.ts';

// A developer's app whose workload spins forever (synchronously: no await, no timer ever runs in
// its process). Without a deadline the job, its runtime child and a CPU stay taken for good, and
// the node can never answer the job. The enclave must kill the child at the job's deadline and
// fail the job with E_TIMEOUT, then keep serving.
const APP = `import { defineApp } from '@firn/app';

export default defineApp({
  name: 'spinner',
  version: '1.0.0',
  workloads: {
    async spin(ctx) {
      ctx.input('data');
      for (;;) {}
    },
  },
});
`;

afterAll(stopAppEnclaves);

describe('a workload that hangs', () => {
  it("is killed at the job's deadline: E_TIMEOUT, and the enclave serves on", async () => {
    const app = await buildAppEnclave(APP, 'firn-app-hang-');
    const sup = await app.start();
    const identity = await sup.call<{ enclaveId: Hex; kemPublicKey: Hex }>('init', {});
    const job = await sealAppJob(identity, app.tmp, {
      kind: 'spin',
      role: 'data',
      plaintext: 'data',
      contentType: 'text/plain',
      app: app.measurement,
    });
    const outputDir = mkdtempSync(join(app.tmp, 'out-'));
    /** Live (not zombie) child processes of the enclave process (Linux /proc; [] elsewhere). */
    const liveKids = (): string[] => {
      if (!existsSync(`/proc/${sup.pid}/task`)) return [];
      const kids = readdirSync(`/proc/${sup.pid}/task`).flatMap((t) => {
        try {
          return readFileSync(`/proc/${sup.pid}/task/${t}/children`, 'utf8')
            .trim()
            .split(/\s+/)
            .filter(Boolean);
        } catch {
          return [];
        }
      });
      return kids.filter((k) => {
        try {
          return !readFileSync(`/proc/${k}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
        } catch {
          return false;
        }
      });
    };
    // The children alive while the job runs: the one spinning the workload among them (the next
    // job's spare child is started only after this job has answered).
    let during: string[] = [];
    const sample = setTimeout(() => {
      during = liveKids();
    }, 1_500);
    const t0 = Date.now();
    let r: unknown;
    try {
      r = await sup.call('runJob', {
        ...job.params(outputDir),
        // The job's deadline: 3 s from now.
        deadline: Math.floor(Date.now() / 1000) + 3,
      });
    } catch (e) {
      r = e;
    }
    const took = Date.now() - t0;
    expect(r).toMatchObject({ code: 'E_TIMEOUT' });
    expect(took).toBeGreaterThanOrEqual(1_500);
    expect(took).toBeLessThan(20_000);
    expect(readdirSync(outputDir)).toEqual([]);
    clearTimeout(sample);
    // The spinning runtime child is gone (killed), not left burning a CPU: none of the enclave's
    // children from during the job is alive (a fresh spare started after it may be).
    await new Promise((r) => setTimeout(r, 500));
    if (existsSync(`/proc/${sup.pid}/task`)) {
      expect(during.length).toBeGreaterThan(0);
      const after = new Set(liveKids());
      expect(during.filter((k) => after.has(k))).toEqual([]);
    }
    // The enclave process is unaffected and answers the next call.
    const hello = await sup.call<{ measurement: Hex }>('hello', {});
    expect(hello.measurement.toLowerCase()).toBe(app.measurement.toLowerCase());
  }, 120_000);
});
