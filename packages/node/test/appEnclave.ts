import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sealInput } from '@firn/client';
import {
  bytesToHex,
  computeAppWorkloadHash,
  computeInputCommitment,
  computeWorkloadHash,
  type Hex,
  hexToBytes,
  type JobRequest,
  jobChannelInfo,
  utf8,
} from '@firn/core';
import { createGrant, generateKemKeyPair, generateSigningKey, openChannel } from '@firn/crypto';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { buildAppImage } from '../src/enclaveImage.ts';
import { EnclaveSupervisor } from '../src/enclaveSupervisor.ts';
import { createLogger } from '../src/logger.ts';

/**
 * Test-only: a developer's app (one `src/index.ts`) built into an enclave image and run as a real
 * enclave process on the simulated TEE, and one job sealed for it the way a requester and a host
 * send it. The attack tests on apps start from here and change one part.
 */

/** Supervisors started by startAppEnclave in this test file (stopped by stopAppEnclaves). */
const started: EnclaveSupervisor[] = [];

/** Stop every enclave this file started (call it in afterAll). */
export async function stopAppEnclaves(): Promise<void> {
  for (const s of started.splice(0)) await s.stop();
}

export interface AppEnclave {
  /** A temporary folder for this app's image, platform, inputs and outputs. */
  tmp: string;
  /** The image's measurement (the app's identity). */
  measurement: Hex;
  /** Start one more enclave process of the image on the same simulated platform (no restart). */
  start(): Promise<EnclaveSupervisor>;
}

/** Build `appSource` into an enclave image on a fresh simulated platform. */
export async function buildAppEnclave(appSource: string, prefix = 'firn-app-'): Promise<AppEnclave> {
  const tmp = mkdtempSync(join(tmpdir(), prefix));
  const appDir = join(tmp, 'app');
  mkdirSync(join(appDir, 'src'), { recursive: true });
  writeFileSync(join(appDir, 'src', 'index.ts'), appSource);
  const built = await buildAppImage({ appDir, outDir: join(tmp, 'image') });
  const platformPath = join(tmp, 'platform.json');
  writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(await createSimulatedRoot())));
  return {
    tmp,
    measurement: built.measurement,
    async start() {
      const sup = new EnclaveSupervisor({
        bundlePath: built.image.entry,
        env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
        logger: createLogger({}, { write: () => undefined }),
        restart: false,
      });
      started.push(sup);
      sup.start();
      await sup.ready();
      return sup;
    },
  };
}

/** One job to seal: a single input and the request's binding. */
export interface AppJobPlan {
  kind: string;
  role: string;
  plaintext: string;
  contentType: string;
  /** The app the request names; absent: a first-party request (workload hash without an app). */
  app?: Hex;
  /** The ledger the request names and the host passes (absent: none). */
  dataLedger?: Hex;
}

/** The chain a request binds in these tests. */
export const APP_JOB_CHAIN = {
  chainId: 31337,
  jobMarket: '0x00000000000000000000000000000000000000aa' as Hex,
};

/**
 * Seal one input to a fresh requester, grant it to `enclave` for a new job (random jobId, expiry
 * in 10 minutes), and seal the request to the enclave's KEM key. `params(outputDir)` is what the
 * host sends with `runJob`; `reseal()` seals the same request again under a new channel.
 */
export async function sealAppJob(
  enclave: { enclaveId: Hex; kemPublicKey: Hex },
  dir: string,
  plan: AppJobPlan,
) {
  const owner = generateSigningKey();
  const requester = await generateKemKeyPair();
  const jobId = bytesToHex(globalThis.crypto.getRandomValues(new Uint8Array(32)));
  const s = await sealInput(utf8(plan.plaintext), plan.contentType, requester.publicKey);
  const inPath = join(dir, s.artifactId.slice(2));
  writeFileSync(inPath, s.sealed);
  const inputs = [{ role: plan.role, artifactId: s.artifactId }];
  const workloadHash =
    plan.app === undefined
      ? computeWorkloadHash(plan.kind, {}, inputs)
      : computeAppWorkloadHash(plan.app, plan.kind, {}, inputs);
  const grant = await createGrant({
    ownerPrivateKey: owner.privateKey,
    artifactId: s.artifactId,
    dataKey: s.dataKey,
    enclaveId: enclave.enclaveId,
    enclaveKemPublicKey: hexToBytes(enclave.kemPublicKey),
    scope: { jobId, workloadHash },
    expiresAt: Math.floor(Date.now() / 1000) + 600,
  });
  const ledger = plan.dataLedger === undefined ? {} : { dataLedger: plan.dataLedger };
  const request: JobRequest = {
    v: 1,
    jobId,
    kind: plan.kind,
    inputs,
    grants: [grant],
    params: {},
    resultRecipient: bytesToHex(requester.publicKey),
    ...APP_JOB_CHAIN,
    ...ledger,
    ...(plan.app === undefined ? {} : { app: plan.app }),
  };
  const reseal = async () => {
    const channel = await openChannel(hexToBytes(enclave.kemPublicKey), { info: jobChannelInfo(jobId) });
    return {
      enc: bytesToHex(channel.enc),
      request: Buffer.from(await channel.sealRequest(utf8(JSON.stringify(request)))).toString('base64'),
    };
  };
  const sealed = await reseal();
  const params = (outputDir: string) => ({
    jobId,
    ...sealed,
    inputPaths: { [s.artifactId]: inPath },
    onChain: { workloadHash, inputCommitment: computeInputCommitment([s.artifactId]) },
    domain: { ...APP_JOB_CHAIN, ...ledger },
    outputDir,
  });
  return { jobId, request, requester, params, reseal };
}
