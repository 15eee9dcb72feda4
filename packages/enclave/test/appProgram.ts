import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Workload } from '@firn/app';
import { sealInput } from '@firn/client';
import {
  bytesToHex,
  computeAppWorkloadHash,
  computeInputCommitment,
  type Hex,
  hexToBytes,
  type JobRequest,
  jobChannelInfo,
  sha256,
  utf8,
} from '@firn/core';
import { createGrant, generateKemKeyPair, generateSigningKey, openChannel } from '@firn/crypto';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { createEnclaveProgram } from '../src/enclaveProgram.ts';
import { createSimulatedProvider } from '../src/evidence/simulated.ts';
import { createRunJobHandler, type RunJobResult } from '../src/jobs/runJob.ts';

/**
 * Test-only: an app's workloads in an enclave program run in this process (simulated TEE, fixed
 * enclave time), and `run(kind)` that sends it one job the way a requester and a host do: a sealed
 * `data` input granted to the enclave for that job, a request sealed to its KEM key, the host's
 * runJob parameters. Each run is a fresh job (random jobId). The attack tests change one part.
 */

/** A workload result with one output `result` of these bytes, one work unit. */
export const oneOutput = (bytes: Uint8Array) => ({
  outputs: [{ role: 'result', contentType: 'application/octet-stream', bytes }],
  workUnits: 1n,
});

/** The chain identity a request binds (chainId, jobMarket) and the ledger the requester names. */
export const APP_TEST_DOMAIN = {
  chainId: 31337,
  jobMarket: '0x00000000000000000000000000000000000000aa' as Hex,
  dataLedger: '0x00000000000000000000000000000000000000dd' as Hex,
};

export interface AppRunOptions {
  /** The ledger the host passes in runJob's `domain` (default APP_TEST_DOMAIN.dataLedger). */
  hostLedger?: Hex;
  /** The ledger the request names; null: the request names none (default APP_TEST_DOMAIN.dataLedger). */
  requestLedger?: Hex | null;
  /** Extra runJob parameters from the host (e.g. `deadline`, unix seconds). */
  extra?: Record<string, unknown>;
  /** Extra job request fields the requester seals (e.g. `maxOutputBytes`). */
  request?: Record<string, unknown>;
}

export interface AppProgram {
  /** The image's measurement as the enclave reports it (`hello`). */
  appMeasurement: Hex;
  /** The folder that holds sealed inputs and outputs. */
  dir: string;
  /** The enclave's identity (`init`). */
  identity: { enclaveId: Hex; kemPublicKey: Hex; enclaveAddress: Hex };
  run(kind: string, o?: AppRunOptions): Promise<RunJobResult>;
}

/** Start the program (`init`) and return its runner. Enclave time is `now` (unix seconds). */
export async function createAppProgram(opts: {
  workloads: Record<string, Workload>;
  now: number;
  limits?: Parameters<typeof createRunJobHandler>[0]['limits'];
  prefix?: string;
  /** Receives the enclave's events to the host (jobEvent, jobFailure). */
  emit?: (event: string, data: unknown) => void;
}): Promise<AppProgram> {
  const dir = mkdtempSync(join(tmpdir(), opts.prefix ?? 'firn-appjob-'));
  const platform = await createSimulatedPlatform(await createSimulatedRoot());
  const measurement = sha256(utf8('app image'));
  const program = createEnclaveProgram(
    {
      provider: createSimulatedProvider(platform, measurement),
      measurementRegisters: [measurement],
      platformId: hexToBytes(platform.platformId),
      ...(opts.emit ? { emit: opts.emit } : {}),
    },
    {
      runJob: createRunJobHandler({
        workloads: opts.workloads,
        now: () => opts.now,
        ...(opts.limits ? { limits: opts.limits } : {}),
      }),
    },
  );
  const identity = (await program.handle('init', {})) as {
    enclaveId: Hex;
    kemPublicKey: Hex;
    enclaveAddress: Hex;
  };
  const appMeasurement = ((await program.handle('hello', {})) as { measurement: Hex }).measurement;
  const owner = generateSigningKey();
  const requester = await generateKemKeyPair();
  const domain = APP_TEST_DOMAIN;

  async function run(kind: string, o: AppRunOptions = {}): Promise<RunJobResult> {
    const requestLedger = o.requestLedger === undefined ? domain.dataLedger : o.requestLedger;
    const jobId = bytesToHex(globalThis.crypto.getRandomValues(new Uint8Array(32)));
    const s = await sealInput(utf8('payload'), 'application/octet-stream', requester.publicKey);
    writeFileSync(join(dir, s.artifactId.slice(2)), s.sealed);
    const inputs = [{ role: 'data', artifactId: s.artifactId }];
    const workloadHash = computeAppWorkloadHash(appMeasurement, kind, {}, inputs);
    const grant = await createGrant({
      ownerPrivateKey: owner.privateKey,
      artifactId: s.artifactId,
      dataKey: s.dataKey,
      enclaveId: identity.enclaveId,
      enclaveKemPublicKey: hexToBytes(identity.kemPublicKey),
      scope: { jobId, workloadHash },
      expiresAt: opts.now + 600,
      issuedAt: opts.now - 60,
    });
    const req = {
      v: 1,
      jobId,
      kind,
      inputs,
      grants: [grant],
      params: {},
      resultRecipient: bytesToHex(requester.publicKey),
      chainId: domain.chainId,
      jobMarket: domain.jobMarket,
      app: appMeasurement,
      ...(requestLedger === null ? {} : { dataLedger: requestLedger }),
      ...o.request,
    } as JobRequest;
    const channel = await openChannel(hexToBytes(identity.kemPublicKey), { info: jobChannelInfo(jobId) });
    return (await program.handle('runJob', {
      jobId,
      enc: bytesToHex(channel.enc),
      request: Buffer.from(await channel.sealRequest(utf8(JSON.stringify(req)))).toString('base64'),
      inputPaths: { [s.artifactId]: join(dir, s.artifactId.slice(2)) },
      onChain: { workloadHash, inputCommitment: computeInputCommitment([s.artifactId]) },
      domain: { ...domain, dataLedger: o.hostLedger ?? domain.dataLedger },
      outputDir: dir,
      ...o.extra,
    })) as RunJobResult;
  }
  return { appMeasurement, dir, identity, run };
}
