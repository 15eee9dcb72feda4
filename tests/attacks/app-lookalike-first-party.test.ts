import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { sealInput } from '@firn/client';
import {
  bytesToHex,
  computeWorkloadHash,
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

// A developer's app that defines a workload named `inference` (any app may) serves first-party
// requests too: a request without `app` (what `firn infer` and the other first-party clients send)
// is checked only for its workload name (checkRequestServed), and `attestNode` without --node
// picks the first Active allow-listed node, whatever app it runs. The requester's model and input
// are then opened in a third party's app, which the requester never chose: "the image measurement
// is the app's identity" is only a protection if a request cannot land on another app.
const APP = `import { defineApp } from '@firn/app';

export default defineApp({
  name: 'lookalike',
  version: '1.0.0',
  workloads: {
    async inference(ctx) {
      // Opened here, in an app the requester did not choose.
      const model = ctx.input('model');
      return { outputs: [{ role: 'output', contentType: 'application/json', bytes: model.slice(0, 8) }], workUnits: 1n };
    },
  },
});
`;

const domain = {
  chainId: 31337,
  jobMarket: '0x00000000000000000000000000000000000000aa' as Hex,
};
const sups: EnclaveSupervisor[] = [];
afterAll(async () => {
  for (const s of sups) await s.stop();
});

describe('a first-party request on a developer app', () => {
  it('an app image refuses a request that does not name its app (E_UNSUPPORTED at preflight)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'firn-app-lookalike-'));
    const appDir = join(tmp, 'app');
    mkdirSync(join(appDir, 'src'), { recursive: true });
    writeFileSync(join(appDir, 'src', 'index.ts'), APP);
    const built = await buildAppImage({ appDir, outDir: join(tmp, 'image') });
    const platformPath = join(tmp, 'platform.json');
    writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(await createSimulatedRoot())));
    const sup = new EnclaveSupervisor({
      bundlePath: built.image.entry,
      env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
      logger: createLogger({}, { write: () => undefined }),
      restart: false,
    });
    sups.push(sup);
    sup.start();
    await sup.ready();
    const identity = await sup.call<{ enclaveId: Hex; kemPublicKey: Hex }>('init', {});
    const requester = await generateKemKeyPair();
    const owner = generateSigningKey();
    const jobId = bytesToHex(globalThis.crypto.getRandomValues(new Uint8Array(32)));
    const s = await sealInput(utf8('secret model bytes'), 'application/onnx', requester.publicKey);
    const inPath = join(tmp, s.artifactId.slice(2));
    writeFileSync(inPath, s.sealed);
    const inputs = [{ role: 'model', artifactId: s.artifactId }];
    // The first-party workload hash: no app in it.
    const workloadHash = computeWorkloadHash('inference', {}, inputs);
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
      kind: 'inference',
      inputs,
      grants: [grant],
      params: {},
      resultRecipient: bytesToHex(requester.publicKey),
      chainId: domain.chainId,
      jobMarket: domain.jobMarket,
    };
    const channel = await openChannel(hexToBytes(identity.kemPublicKey), { info: jobChannelInfo(jobId) });
    const params = {
      jobId,
      enc: bytesToHex(channel.enc),
      request: Buffer.from(await channel.sealRequest(utf8(JSON.stringify(request)))).toString('base64'),
      inputPaths: { [s.artifactId]: inPath },
      onChain: { workloadHash, inputCommitment: computeInputCommitment([s.artifactId]) },
      domain,
      outputDir: mkdtempSync(join(tmp, 'out-')),
    };
    let r: unknown;
    try {
      r = await sup.call<RunJobResult>('runJob', params);
    } catch (e) {
      r = e;
    }
    expect(r).toMatchObject({ code: 'E_UNSUPPORTED' });
  }, 120_000);
});
