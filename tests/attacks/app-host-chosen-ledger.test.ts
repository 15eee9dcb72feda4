import { mkdtempSync, writeFileSync } from 'node:fs';
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
  sha256,
  utf8,
} from '@firn/core';
import { createGrant, generateKemKeyPair, generateSigningKey, openChannel } from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import type { Workload } from '@firn/app';
import { createEnclaveProgram } from '../../packages/enclave/src/enclaveProgram.ts';
import { createSimulatedProvider } from '../../packages/enclave/src/evidence/simulated.ts';
import { createRunJobHandler, type RunJobResult } from '../../packages/enclave/src/jobs/runJob.ts';

// A malicious host chooses the data ledger the enclave signs an app's records for (runJob's
// `domain.dataLedger` comes from the host; the request binds chainId and jobMarket but not the
// ledger). With a ledger of its own choosing the records are valid signatures for a contract
// nobody reads: they can never be posted to the deployment's FirnDataLedger (WrongSigner), so the
// records are withheld for good, while the Work Proof (which does not cover them) is accepted and
// the host is paid. The requester must be able to name the ledger, as it names the job market.
const NOW = 1_750_000_000;
const dir = mkdtempSync(join(tmpdir(), 'firn-ledger-'));
const platform = await createSimulatedPlatform(await createSimulatedRoot());
const measurement = sha256(utf8('app image'));
const out = (bytes: Uint8Array) => ({
  outputs: [{ role: 'result', contentType: 'application/octet-stream', bytes }],
  workUnits: 1n,
});
const workloads: Record<string, Workload> = {
  async certify(ctx) {
    await ctx.signData(sha256(ctx.input('data')), { topic: 'digest' });
    return out(new Uint8Array(1));
  },
  async greedy(ctx) {
    for (let i = 0; i < 17; i++) await ctx.signData(sha256(new Uint8Array([i])), { topic: `n${i}` });
    return out(new Uint8Array(1));
  },
  async short(ctx) {
    await ctx.signData(new Uint8Array(31), { topic: 'digest' });
    return out(new Uint8Array(1));
  },
  async smuggle(ctx) {
    // A result that carries its own "records": only records the enclave process signed count.
    const fake = { ...(await ctx.signData(sha256(ctx.input('data')), { topic: 'real' })), topic: 'fake' };
    return { ...out(new Uint8Array(1)), signedData: [fake, fake] } as unknown as ReturnType<Workload>;
  },
};
const program = createEnclaveProgram(
  {
    provider: createSimulatedProvider(platform, measurement),
    measurementRegisters: [measurement],
    platformId: hexToBytes(platform.platformId),
  },
  { runJob: createRunJobHandler({ workloads, now: () => NOW }) },
);
const identity = (await program.handle('init', {})) as { enclaveId: Hex; kemPublicKey: Hex };
const appMeasurement = ((await program.handle('hello', {})) as { measurement: Hex }).measurement;
const owner = generateSigningKey();
const requester = await generateKemKeyPair();
const domain = {
  chainId: 31337,
  jobMarket: '0x00000000000000000000000000000000000000aa' as Hex,
  dataLedger: '0x00000000000000000000000000000000000000dd' as Hex,
};

async function run(
  kind: string,
  hostLedger: Hex,
  reqLedger: Hex | null = domain.dataLedger,
): Promise<RunJobResult> {
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
    expiresAt: NOW + 600,
    issuedAt: NOW - 60,
  });
  const req: JobRequest = {
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
    ...(reqLedger === null ? {} : { dataLedger: reqLedger }),
  } as JobRequest;
  const channel = await openChannel(hexToBytes(identity.kemPublicKey), { info: jobChannelInfo(jobId) });
  return (await program.handle('runJob', {
    jobId,
    enc: bytesToHex(channel.enc),
    request: Buffer.from(await channel.sealRequest(utf8(JSON.stringify(req)))).toString('base64'),
    inputPaths: { [s.artifactId]: join(dir, s.artifactId.slice(2)) },
    onChain: { workloadHash, inputCommitment: computeInputCommitment([s.artifactId]) },
    domain: { ...domain, dataLedger: hostLedger },
    outputDir: dir,
  })) as RunJobResult;
}

describe('the ledger an app signs for', () => {
  it('records are signed for the ledger the requester named', async () => {
    const r = await run('certify', domain.dataLedger);
    expect(r.signedData[0]!.ledger.address).toBe(domain.dataLedger);
  });
  it('a request that names no ledger gets no record, whatever ledger the host names', async () => {
    const r = await run('certify', '0x00000000000000000000000000000000000000ee', null).catch(
      (e: unknown) => e,
    );
    expect((r as RunJobResult).signedData?.[0]?.ledger.address).toBeUndefined();
    expect(r).toMatchObject({ code: 'E_UNSUPPORTED' });
  });
  it('a host that names another ledger gets the job refused (E_JOB_INVALID)', async () => {
    await expect(run('certify', '0x00000000000000000000000000000000000000ee')).rejects.toMatchObject({
      code: 'E_JOB_INVALID',
    });
  });
});
