import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { openOutput, sealInput } from '@firn/client';
import {
  bytesToHex,
  computeAppWorkloadHash,
  computeInputCommitment,
  type Hex,
  hexToBytes,
  type JobRequest,
  jobChannelInfo,
  utf8,
} from '@firn/core';
import { createGrant, generateKemKeyPair, generateSigningKey, openChannel } from '@firn/crypto';
import type { RunJobResult } from '@firn/enclave';
import { createLogger } from '@firn/node';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAppImage } from '../../packages/node/src/enclaveImage.ts';
import { EnclaveSupervisor } from '../../packages/node/src/enclaveSupervisor.ts';

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

const domain = {
  chainId: 31337,
  jobMarket: '0x00000000000000000000000000000000000000aa' as Hex,
  dataLedger: '0x00000000000000000000000000000000000000dd' as Hex,
};
const sups: EnclaveSupervisor[] = [];
afterAll(async () => {
  for (const s of sups) await s.stop();
});

async function setup() {
  const tmp = mkdtempSync(join(tmpdir(), 'firn-app-replay-'));
  const appDir = join(tmp, 'app');
  mkdirSync(join(appDir, 'src'), { recursive: true });
  writeFileSync(join(appDir, 'src', 'index.ts'), APP);
  const built = await buildAppImage({ appDir, outDir: join(tmp, 'image') });
  const platformPath = join(tmp, 'platform.json');
  writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(await createSimulatedRoot())));
  const start = async () => {
    const sup = new EnclaveSupervisor({
      bundlePath: built.image.entry,
      env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
      logger: createLogger({}, { write: () => undefined }),
      restart: false,
    });
    sups.push(sup);
    sup.start();
    await sup.ready();
    return sup;
  };

  const first = await start();
  const identity = await first.call<{
    enclaveId: Hex;
    kemPublicKey: Hex;
    sealedKeys: unknown;
    sealedState: unknown;
  }>('init', {});
  const owner = generateSigningKey();
  const requester = await generateKemKeyPair();
  const jobId = bytesToHex(globalThis.crypto.getRandomValues(new Uint8Array(32)));
  const s = await sealInput(utf8('alice,bob'), 'text/plain', requester.publicKey);
  const inPath = join(tmp, s.artifactId.slice(2));
  writeFileSync(inPath, s.sealed);
  const inputs = [{ role: 'entries', artifactId: s.artifactId }];
  const workloadHash = computeAppWorkloadHash(built.measurement, 'draw', {}, inputs);
  const grant = await createGrant({
    ownerPrivateKey: owner.privateKey,
    artifactId: s.artifactId,
    dataKey: s.dataKey,
    enclaveId: identity.enclaveId,
    enclaveKemPublicKey: hexToBytes(identity.kemPublicKey),
    scope: { jobId, workloadHash },
    expiresAt: Math.floor(Date.now() / 1000) + 600,
  });
  const request: JobRequest = {
    v: 1,
    jobId,
    kind: 'draw',
    inputs,
    grants: [grant],
    params: {},
    resultRecipient: bytesToHex(requester.publicKey),
    chainId: domain.chainId,
    jobMarket: domain.jobMarket,
    dataLedger: domain.dataLedger,
    app: built.measurement,
  };
  const channel = await openChannel(hexToBytes(identity.kemPublicKey), { info: jobChannelInfo(jobId) });
  const sealedRequest = Buffer.from(await channel.sealRequest(utf8(JSON.stringify(request)))).toString(
    'base64',
  );
  const params = (outputDir: string) => ({
    jobId,
    enc: bytesToHex(channel.enc),
    request: sealedRequest,
    inputPaths: { [s.artifactId]: inPath },
    onChain: { workloadHash, inputCommitment: computeInputCommitment(inputs.map((i) => i.artifactId)) },
    domain,
    outputDir,
  });
  const p = params(mkdtempSync(join(tmp, 'out1-')));
  const r1 = await first.call<RunJobResult>('runJob', p);
  expect(r1.signedData).toHaveLength(1);
  // Within one process the replay is refused.
  await expect(first.call('runJob', p)).rejects.toMatchObject({ code: 'E_CHANNEL_SEQUENCE' });
  return { tmp, start, first, identity, request, jobId, p, r1, requester };
}

describe('one job runs once in an enclave', () => {
  it('a fresh request for a job that already ran is refused (the grants serve one run)', async () => {
    const { tmp, first, identity, request, jobId, p } = await setup();

    // A requester who hosts the node (or a host given a second request by the requester) seals a
    // fresh request for the same job: new channel, the same grants, still in scope (jobId,
    // workloadHash) and unexpired. One grant would serve any number of runs.
    const again = await openChannel(hexToBytes(identity.kemPublicKey), { info: jobChannelInfo(jobId) });
    const fresh = {
      ...p,
      enc: bytesToHex(again.enc),
      request: Buffer.from(await again.sealRequest(utf8(JSON.stringify(request)))).toString('base64'),
      outputDir: mkdtempSync(join(tmp, 'out1b-')),
    };
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
