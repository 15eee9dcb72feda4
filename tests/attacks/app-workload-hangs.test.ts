import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { sealInput } from '@firn/client';
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
import { createLogger } from '@firn/node';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAppImage } from '../../packages/node/src/enclaveImage.ts';
import { EnclaveSupervisor } from '../../packages/node/src/enclaveSupervisor.ts';

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

const domain = { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' as Hex };
const sups: EnclaveSupervisor[] = [];
afterAll(async () => {
  for (const s of sups) await s.stop();
});

describe('a workload that hangs', () => {
  it("is killed at the job's deadline: E_TIMEOUT, and the enclave serves on", async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'firn-app-hang-'));
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
    const s = await sealInput(utf8('data'), 'text/plain', requester.publicKey);
    const inPath = join(tmp, s.artifactId.slice(2));
    writeFileSync(inPath, s.sealed);
    const inputs = [{ role: 'data', artifactId: s.artifactId }];
    const workloadHash = computeAppWorkloadHash(built.measurement, 'spin', {}, inputs);
    const now = Math.floor(Date.now() / 1000);
    const grant = await createGrant({
      ownerPrivateKey: owner.privateKey,
      artifactId: s.artifactId,
      dataKey: s.dataKey,
      enclaveId: identity.enclaveId,
      enclaveKemPublicKey: hexToBytes(identity.kemPublicKey),
      scope: { jobId, workloadHash },
      expiresAt: now + 600,
    });
    const request: JobRequest = {
      v: 1,
      jobId,
      kind: 'spin',
      inputs,
      grants: [grant],
      params: {},
      resultRecipient: bytesToHex(requester.publicKey),
      chainId: domain.chainId,
      jobMarket: domain.jobMarket,
      app: built.measurement,
    };
    const channel = await openChannel(hexToBytes(identity.kemPublicKey), { info: jobChannelInfo(jobId) });
    const outputDir = mkdtempSync(join(tmp, 'out-'));
    const t0 = Date.now();
    let r: unknown;
    try {
      r = await sup.call('runJob', {
        jobId,
        enc: bytesToHex(channel.enc),
        request: Buffer.from(await channel.sealRequest(utf8(JSON.stringify(request)))).toString('base64'),
        inputPaths: { [s.artifactId]: inPath },
        onChain: { workloadHash, inputCommitment: computeInputCommitment([s.artifactId]) },
        domain,
        outputDir,
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
    // The spinning runtime child is gone (killed), not left burning a CPU: the enclave process has
    // no child left (Linux /proc; the children file lists each thread's children).
    await new Promise((r) => setTimeout(r, 500));
    if (existsSync(`/proc/${sup.pid}/task`)) {
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
      const alive = kids.filter((k) => {
        try {
          return !readFileSync(`/proc/${k}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
        } catch {
          return false;
        }
      });
      expect(alive).toEqual([]);
    }
    // The enclave process is unaffected and answers the next call.
    const hello = await sup.call<{ measurement: Hex }>('hello', {});
    expect(hello.measurement.toLowerCase()).toBe(built.measurement.toLowerCase());
  }, 120_000);
});
