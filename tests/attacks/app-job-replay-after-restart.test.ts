import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openOutput } from '@firn/client';
import { bytesToHex, type Hex } from '@firn/core';
import type { RunJobResult } from '@firn/enclave';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAppEnclave, sealAppJob, stopAppEnclaves } from '../../packages/node/test/appEnclave.ts';

// A malicious host replays one job request after restarting the enclave process (its sealed keys
// unseal again; the memory of accepted channels, runJob.ts `acceptedChannels`, is per process).
// Before 1080's per-job randomness the enclave ran the job a second time with a new draw and signed
// a second, different record: the host kept the draw it liked and withheld the other. Now a re-run
// draws the same bytes and signs the same record, so there is nothing to choose between.
// (The channel's per-acceptance salt keeps the two responses under different keys: no nonce reuse.)
const APP = `import { sha256 } from '@noble/hashes/sha2.js';
import { defineApp } from '@firn/app';

export default defineApp({
  name: 'lottery',
  version: '1.0.0',
  workloads: {
    async draw(ctx) {
      ctx.input('entries');
      const draw = ctx.random(16);
      await ctx.signData(sha256(draw), { topic: 'draw' });
      return { outputs: [{ role: 'result', contentType: 'application/octet-stream', bytes: draw }], workUnits: 1n };
    },
  },
});
`;

afterAll(stopAppEnclaves);

async function setup() {
  const app = await buildAppEnclave(APP, 'firn-app-replay-');
  const { tmp, start } = app;
  const first = await start();
  const identity = await first.call<{
    enclaveId: Hex;
    kemPublicKey: Hex;
    sealedKeys: unknown;
    sealedState: unknown;
  }>('init', {});
  const { requester, params, reseal } = await sealAppJob(identity, tmp, {
    kind: 'draw',
    role: 'entries',
    plaintext: 'alice,bob',
    contentType: 'text/plain',
    app: app.measurement,
    dataLedger: '0x00000000000000000000000000000000000000dd',
  });
  const p = params(mkdtempSync(join(tmp, 'out1-')));
  const r1 = await first.call<RunJobResult>('runJob', p);
  expect(r1.signedData).toHaveLength(1);
  // Within one process the replay is refused.
  await expect(first.call('runJob', p)).rejects.toMatchObject({ code: 'E_CHANNEL_SEQUENCE' });
  return { tmp, start, first, identity, p, r1, requester, reseal };
}

describe('one job runs once in an enclave', () => {
  it('a fresh request for a job that already ran is refused (the grants serve one run)', async () => {
    const { tmp, first, p, reseal } = await setup();

    // A requester who hosts the node (or a host given a second request by the requester) seals a
    // fresh request for the same job: new channel, the same grants, still in scope (jobId,
    // workloadHash) and unexpired. One grant would serve any number of runs.
    const fresh = { ...p, ...(await reseal()), outputDir: mkdtempSync(join(tmp, 'out1b-')) };
    let rerun: unknown;
    try {
      rerun = await first.call<RunJobResult>('runJob', fresh);
    } catch (e) {
      rerun = e;
    }
    expect(rerun).toMatchObject({ code: 'E_CONFLICT' });
  }, 120_000);

  it('a host that restarts the enclave and replays a job gets the same draw and the same record', async () => {
    const { tmp, start, first, identity, p, r1, requester } = await setup();

    // The host restarts the enclave from its sealed keys and replays the same request. The memory
    // of accepted channels is per process, and a host can always hand back older sealed state, so
    // the enclave cannot know the job ran (1080, "Randomness"). What it guarantees instead: the
    // re-run is the same run. ctx.random is derived from the enclave's key, the jobId and the
    // workload hash, so the host gets the same draw and the same signed record, never a choice.
    await first.stop();
    const second = await start();
    await second.call('init', { sealedKeys: identity.sealedKeys, sealedState: identity.sealedState });
    let r2: RunJobResult | undefined;
    let refused: unknown;
    try {
      r2 = await second.call<RunJobResult>('runJob', { ...p, outputDir: mkdtempSync(join(tmp, 'out2-')) });
    } catch (e) {
      refused = e;
    }
    if (r2 === undefined) {
      expect(refused).toMatchObject({ code: 'E_CHANNEL_SEQUENCE' });
      return;
    }
    const d1 = await openOutput(new Uint8Array(readFileSync(r1.outputs[0]!.path)), requester.privateKey);
    const d2 = await openOutput(new Uint8Array(readFileSync(r2.outputs[0]!.path)), requester.privateKey);
    expect(d1.bytes).toHaveLength(16);
    expect(bytesToHex(d2.bytes)).toBe(bytesToHex(d1.bytes));
    expect(r2.signedData).toHaveLength(1);
    expect(r2.signedData[0]!.dataHash).toBe(r1.signedData[0]!.dataHash);
    expect(r2.signedData[0]!.signature).toBe(r1.signedData[0]!.signature);
  }, 120_000);

  it('two different jobs on one enclave draw different bytes', async () => {
    // The derivation is per job: the same app and inputs under another jobId draw anew.
    const a = await setup();
    const b = await setup();
    const da = await openOutput(new Uint8Array(readFileSync(a.r1.outputs[0]!.path)), a.requester.privateKey);
    const db = await openOutput(new Uint8Array(readFileSync(b.r1.outputs[0]!.path)), b.requester.privateKey);
    expect(bytesToHex(da.bytes)).not.toBe(bytesToHex(db.bytes));
  }, 180_000);
});
