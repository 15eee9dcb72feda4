import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import type { Hex } from '@firn/core';
import type { RunJobResult } from '@firn/enclave';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAppEnclave, sealAppJob, stopAppEnclaves } from '../../packages/node/test/appEnclave.ts';

// A malicious host runs jobs through a real enclave process and reads what it relays: the job's
// progress events (`jobEvent`), the sealed failure event and the sealed job summary (`response`).
// All of them are "sealed" (docs/decisions/0853, 1769: progress events, the report and error
// messages travel sealed), but the job channel (channel.ts sealEvent / sealResponse) was AES-GCM
// over the plaintext as it was: the host read each plaintext's exact length. Here that is the
// length of a name the requester looked up (quoted in the app's error message), and whether a
// share computed from the requester's votes is a "round" number (1 against 0.3333333333333333),
// each from inputs whose sealed files are of one length. Session messages have been padded
// since 1735; the job channel had nothing.
const APP = `import { defineApp, FirnError } from '@firn/app';

const text = (b) => new TextDecoder().decode(b).trim();
export default defineApp({
  name: 'lengths',
  version: '1.0.0',
  workloads: {
    async lookup(ctx) {
      const name = text(ctx.input('query'));
      throw new FirnError('E_NOT_FOUND', 'no record for "' + name + '"');
    },
    async score(ctx) {
      const votes = text(ctx.input('votes')).split('');
      const share = votes.filter((v) => v === 'y').length / votes.length;
      ctx.progress({ stage: 'counted', share });
      return {
        outputs: [{ role: 'result', contentType: 'application/octet-stream', bytes: new Uint8Array(64) }],
        workUnits: 1n,
        report: { share },
      };
    },
  },
});
`;

afterAll(stopAppEnclaves);

describe('attack (host): lengths of the job channel’s sealed messages', () => {
  it('do not tell the host what a failure message quotes, nor a value computed from the inputs', async () => {
    const app = await buildAppEnclave(APP, 'firn-job-lengths-');
    const enclave = await app.start();
    const identity = await enclave.call<{ enclaveId: Hex; kemPublicKey: Hex }>('init', {});
    // What the host sees of every job event: its kind and the sealed message's length.
    const seen: { jobId: string; event: string; length: number }[] = [];
    enclave.on('event', (event: string, data: { jobId?: string; message?: string }) => {
      if (event === 'jobEvent' && typeof data.message === 'string' && typeof data.jobId === 'string')
        seen.push({ jobId: data.jobId, event, length: data.message.length });
    });
    const eventsOf = (jobId: Hex) => seen.filter((s) => s.jobId === jobId).map((s) => s.length);

    /** Run one job for `plaintext` (padded with spaces to 32 bytes: every sealed input is as long). */
    const run = async (kind: string, role: string, plaintext: string) => {
      const job = await sealAppJob(identity, app.tmp, {
        kind,
        role,
        plaintext: plaintext.padEnd(32, ' '),
        contentType: 'text/plain',
        app: app.measurement,
      });
      const outcome = await enclave
        .call<RunJobResult>('runJob', job.params(mkdtempSync(join(app.tmp, 'out-'))))
        .then(
          (r) => ({ ok: true as const, response: r.response.length, sizes: r.outputs.map((o) => o.size) }),
          (e: { code?: string }) => ({ ok: false as const, code: e.code }),
        );
      // Events are written before the answer frame; let the last ones arrive.
      await new Promise((r) => setTimeout(r, 50));
      return { outcome, events: eventsOf(job.jobId) };
    };

    // A failure whose sealed message quotes the requester's plaintext.
    const short = await run('lookup', 'query', 'al');
    const long = await run('lookup', 'query', 'bartholomew-of-the-long-name');
    expect(short.outcome).toEqual({ ok: false, code: 'E_NOT_FOUND' });
    expect(long.outcome).toEqual({ ok: false, code: 'E_NOT_FOUND' });
    expect(short.events.length).toBe(long.events.length);
    expect(long.events, 'the failed event’s length tells the looked-up name’s length').toEqual(short.events);

    // A progress event and a report that carry a share of the requester's votes.
    const all = await run('score', 'votes', 'yyy');
    const third = await run('score', 'votes', 'ynn');
    expect(all.outcome.ok && third.outcome.ok).toBe(true);
    expect(third.outcome, 'the sealed summary’s length tells whether the reported share is round').toEqual(
      all.outcome,
    );
    expect(third.events, 'the progress event’s length tells whether the share is round').toEqual(all.events);
  }, 180_000);
});
