import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { openOutput, sealInput } from '@firn/client';
import {
  bytesToHex,
  computeAppWorkloadHash,
  computeInputCommitment,
  computeOutputCommitment,
  type Hex,
  hexToBytes,
  type JobRequest,
  jobChannelInfo,
  parseWorkProofJson,
  sha256,
  signedDataDigest,
  signedDataHash,
  utf8,
  workProofDigest,
} from '@firn/core';
import {
  createGrant,
  generateKemKeyPair,
  generateSigningKey,
  openChannel,
  recoverAddress,
} from '@firn/crypto';
import type { RunJobResult } from '@firn/enclave';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAppImage } from './enclaveImage.ts';
import { EnclaveSupervisor } from './enclaveSupervisor.ts';
import { createLogger } from './logger.ts';

// A developer's app, written in folders outside the repository and built against the installed
// SDK; then run in the real image (enclave process + keyless runtime child) under the supervisor.
const APP = `import { sha256 } from '@noble/hashes/sha2.js';
import { defineApp, FirnError } from '@firn/app';
import { reversed } from './lib/reverse.ts';

export default defineApp({
  name: 'example',
  version: '1.0.0',
  workloads: {
    async reverse(ctx) {
      const data = ctx.input('data');
      ctx.progress({ stage: 'reversing', n: data.length });
      const record = await ctx.signData(sha256(data), { topic: 'digest' });
      return {
        outputs: [{ role: 'result', contentType: 'application/octet-stream', bytes: reversed(data) }],
        workUnits: 1n,
        report: { signer: record.enclaveAddress, random: ctx.random(8).length, now: ctx.now() },
      };
    },
    async boom(ctx) {
      throw new Error('CANARY-' + new TextDecoder().decode(ctx.input('data')));
    },
    async cyclic(ctx) {
      const o: Record<string, unknown> = { stage: 'loop' };
      o.self = o;
      ctx.progress(o);
      return { outputs: [{ role: 'result', contentType: 'text/plain', bytes: new Uint8Array(1) }], workUnits: 1n };
    },
    async typed() {
      throw new FirnError('E_GRANT_EXPIRED', 'an app may not speak for the framework');
    },
  },
});
`;
const LIB = `export const reversed = (d: Uint8Array) => d.slice().reverse();\n`;

function writeApp(dir: string, lib = LIB): string {
  mkdirSync(join(dir, 'src', 'lib'), { recursive: true });
  writeFileSync(join(dir, 'src', 'index.ts'), APP);
  writeFileSync(join(dir, 'src', 'lib', 'reverse.ts'), lib);
  return dir;
}

const tmp = mkdtempSync(join(tmpdir(), 'firn-app-image-'));
const appA = writeApp(join(tmp, 'one', 'a'));
const appB = writeApp(join(tmp, 'two', 'deeper', 'b'));
const built = await buildAppImage({ appDir: appA, outDir: join(tmp, 'image-a') });
const platformPath = join(tmp, 'platform.json');
writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(await createSimulatedRoot())));
const sups: EnclaveSupervisor[] = [];
/** Another app's image (built by the second test). */
const other = { entry: '' };
afterAll(async () => {
  for (const s of sups) await s.stop();
});

describe('firn app build: reproducible identity', () => {
  it('two folders with the same sources give one measurement and byte-identical bundles', async () => {
    const b = await buildAppImage({ appDir: appB });
    expect(b.measurement).toBe(built.measurement);
    expect(readFileSync(b.image.entry).equals(readFileSync(built.image.entry))).toBe(true);
    const text = readFileSync(built.image.entry, 'utf8');
    expect(text).not.toContain(tmp);
    expect(text).not.toContain(process.cwd());
    expect(b.app).toEqual({
      format: 'firn/app/v1',
      name: 'example',
      version: '1.0.0',
      workloads: ['boom', 'cyclic', 'reverse', 'typed'],
    });
  }, 60_000);

  it('one changed byte in the app gives another measurement', async () => {
    const c = writeApp(join(tmp, 'three', 'c'));
    writeFileSync(join(c, 'src', 'index.ts'), APP.replace('workUnits: 1n', 'workUnits: 2n'));
    const r = await buildAppImage({ appDir: c });
    expect(r.measurement).not.toBe(built.measurement);
    other.entry = r.image.entry;
  }, 60_000);

  it('an image whose bundle differs from its manifest does not start (E_IMAGE_MISMATCH)', () => {
    const d = join(tmp, 'tampered');
    cpSync(built.image.dir, d, { recursive: true });
    appendFileSync(join(d, 'app', 'enclave.mjs'), '\n');
    const r = spawnSync(process.execPath, [join(d, 'app', 'enclave.mjs')], {
      env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
      input: '',
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr.toString()).toMatch(/E_IMAGE_MISMATCH/);
  }, 40_000);
});

const domain = {
  chainId: 31337,
  jobMarket: '0x00000000000000000000000000000000000000aa' as Hex,
  dataLedger: '0x00000000000000000000000000000000000000dd' as Hex,
};

describe('an app image runs its workloads in the enclave', async () => {
  const sup = new EnclaveSupervisor({
    bundlePath: built.image.entry,
    env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
    logger: createLogger({}, { write: () => undefined }),
    restart: false,
  });
  sups.push(sup);
  sup.start();
  await sup.ready();
  const identity = await sup.call<{
    enclaveId: Hex;
    kemPublicKey: Hex;
    enclaveAddress: Hex;
    sealedKeys: unknown;
  }>('init', {});
  const events = new Map<Hex, string[]>();
  sup.on('event', (name: string, data: { jobId: Hex; message: string }) => {
    if (name === 'jobEvent') events.set(data.jobId, [...(events.get(data.jobId) ?? []), data.message]);
  });
  const owner = generateSigningKey();
  const requester = await generateKemKeyPair();
  const outDir = mkdtempSync(join(tmp, 'out-'));

  /** Seal `data` under `role`, grant it to this enclave for a job of `workload` pinned to `app`, seal the request. */
  async function job(workload: string, role: string, data: Uint8Array, app: Hex = built.measurement) {
    const jobId = bytesToHex(globalThis.crypto.getRandomValues(new Uint8Array(32)));
    const s = await sealInput(data, 'application/octet-stream', requester.publicKey);
    const path = join(outDir, s.artifactId.slice(2));
    writeFileSync(path, s.sealed);
    const inputs = [{ role, artifactId: s.artifactId }];
    const workloadHash = computeAppWorkloadHash(app, workload, {}, inputs);
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
      kind: workload,
      inputs,
      grants: [grant],
      params: {},
      resultRecipient: bytesToHex(requester.publicKey),
      chainId: domain.chainId,
      jobMarket: domain.jobMarket,
      dataLedger: domain.dataLedger,
      app,
    };
    const channel = await openChannel(hexToBytes(identity.kemPublicKey), {
      info: jobChannelInfo(jobId),
    });
    const ciphertext = Buffer.from(await channel.sealRequest(utf8(JSON.stringify(request)))).toString(
      'base64',
    );
    const params = {
      jobId,
      enc: bytesToHex(channel.enc),
      request: ciphertext,
      inputPaths: { [s.artifactId]: path },
      onChain: { workloadHash, inputCommitment: computeInputCommitment([s.artifactId]) },
      domain,
      outputDir: outDir,
    };
    const sealedEvents = async () => {
      const out: Record<string, unknown>[] = [];
      for (const m of events.get(jobId) ?? [])
        out.push(JSON.parse(new TextDecoder().decode(await channel.openEvent(m))));
      return out;
    };
    return { jobId, params, channel, sealedEvents, workloadHash };
  }

  const hostError = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (e) {
      return e as { code: string; message: string };
    }
    throw new Error('expected a failure');
  };

  it('runs the workload: output, Work Proof on the app measurement, and a signed-data record', async () => {
    const hello = await sup.call<{ measurement: Hex }>('hello');
    expect(hello.measurement).toBe(built.measurement);
    const j = await job('reverse', 'data', utf8('hello firn'));
    const r = await sup.call<RunJobResult>('runJob', j.params);
    const out = await openOutput(new Uint8Array(readFileSync(r.outputs[0]!.path)), requester.privateKey);
    expect(new TextDecoder().decode(out.bytes)).toBe('nrif olleh');
    const proof = parseWorkProofJson(r.proof);
    expect(proof.proof.measurement).toBe(built.measurement);
    expect(proof.proof.workloadHash).toBe(j.workloadHash);
    expect(proof.proof.outputCommitment).toBe(computeOutputCommitment(r.outputs));
    expect(
      recoverAddress(
        Buffer.from(workProofDigest(domain, proof.proof).slice(2), 'hex'),
        Buffer.from(proof.signature.slice(2), 'hex'),
      ),
    ).toBe(identity.enclaveAddress.toLowerCase());

    expect(r.signedData).toHaveLength(1);
    const rec = r.signedData[0]!;
    expect(rec).toMatchObject({
      topic: 'digest',
      digest: bytesToHex(sha256(utf8('hello firn'))),
      uri: 'firn:data:digest',
      enclaveId: identity.enclaveId,
      ledger: { chainId: domain.chainId, address: domain.dataLedger },
      jobId: j.jobId,
    });
    expect(rec.dataHash).toBe(signedDataHash('digest', rec.digest));
    const signerOf = (dataHash: Hex, uri = rec.uri) =>
      recoverAddress(
        Buffer.from(
          signedDataDigest(rec.ledger, { enclaveId: rec.enclaveId, dataHash, uri }).slice(2),
          'hex',
        ),
        Buffer.from(rec.signature.slice(2), 'hex'),
      );
    expect(signerOf(rec.dataHash)).toBe(identity.enclaveAddress.toLowerCase());
    // The attack: one byte of the digest changed; the record no longer recovers to the enclave.
    const forged = `${rec.digest.slice(0, -2)}${rec.digest.endsWith('00') ? '01' : '00'}` as Hex;
    expect(signerOf(signedDataHash('digest', forged))).not.toBe(identity.enclaveAddress.toLowerCase());
    expect(signerOf(rec.dataHash, 'firn:data:other')).not.toBe(identity.enclaveAddress.toLowerCase());

    const summary = JSON.parse(new TextDecoder().decode(await j.channel.openResponse(r.response)));
    expect(summary.signedData[0].signature).toBe(rec.signature);
    expect(summary.report).toMatchObject({ signer: identity.enclaveAddress.toLowerCase(), random: 8 });
    const ev = await j.sealedEvents();
    expect(ev.map((e) => e.stage)).toEqual(['started', 'reversing', 'finished']);
  }, 30_000);

  it('an app that throws: the host sees E_JOB_FAILED only, the requester gets the message sealed', async () => {
    const j = await job('boom', 'data', utf8('7391'));
    const e = await hostError(sup.call('runJob', j.params));
    expect(e.code).toBe('E_JOB_FAILED');
    expect(JSON.stringify(e)).not.toContain('CANARY');
    const failed = (await j.sealedEvents()).find((x) => x.stage === 'failed');
    expect(failed?.error).toEqual({ code: 'E_JOB_FAILED', message: 'CANARY-7391' });
  }, 30_000);

  it('a progress event the enclave cannot relay (a cycle) fails that job only; the enclave serves the next', async () => {
    const j = await job('cyclic', 'data', utf8('x'));
    expect((await hostError(sup.call('runJob', j.params))).code).toBe('E_JOB_FAILED');
    const next = await job('reverse', 'data', utf8('ab'));
    const r = await sup.call<RunJobResult>('runJob', next.params);
    expect(r.outputs).toHaveLength(1);
  }, 30_000);

  it('an app cannot raise a framework error code (becomes E_JOB_FAILED)', async () => {
    const j = await job('typed', 'data', utf8('x'));
    expect((await hostError(sup.call('runJob', j.params))).code).toBe('E_JOB_FAILED');
  }, 30_000);

  it('a missing input role is E_INPUT_INVALID; the role names reach the requester only', async () => {
    const j = await job('reverse', 'secretrole', utf8('x'));
    const e = await hostError(sup.call('runJob', j.params));
    expect(e.code).toBe('E_INPUT_INVALID');
    expect(JSON.stringify(e)).not.toContain('secretrole');
    const failed = (await j.sealedEvents()).find((x) => x.stage === 'failed') as {
      error: { message: string };
    };
    expect(failed.error.message).toMatch(/"data".*"secretrole"/);
  }, 30_000);

  it('a workload the app does not define is E_UNSUPPORTED, before any input is opened', async () => {
    const j = await job('nosuch', 'data', utf8('x'));
    expect((await hostError(sup.call('preflightJob', j.params))).code).toBe('E_UNSUPPORTED');
  }, 30_000);

  it('a job pinned to another app is refused at preflight (E_UNSUPPORTED), so it is never claimed', async () => {
    const other = bytesToHex(sha256(utf8('another app')));
    const j = await job('reverse', 'data', utf8('x'), other);
    expect((await hostError(sup.call('preflightJob', j.params))).code).toBe('E_UNSUPPORTED');
  }, 30_000);

  it('the host cannot move a job to another app: an app-pinned hash differs from the unpinned one', async () => {
    const j = await job('reverse', 'data', utf8('x'));
    // The host claims the on-chain job was the unpinned workload: the enclave computes the pinned one.
    const { computeWorkloadHash } = await import('@firn/core');
    const forged = {
      ...j.params,
      onChain: {
        ...j.params.onChain,
        workloadHash: computeWorkloadHash('reverse', {}, [
          { role: 'data', artifactId: Object.keys(j.params.inputPaths)[0] as Hex },
        ]),
      },
    };
    expect((await hostError(sup.call('runJob', forged))).code).toBe('E_JOB_INVALID');
  }, 30_000);

  it("another app's enclave on the same platform cannot unseal this app's keys (E_SEAL)", async () => {
    const sealed = identity.sealedKeys;
    expect(other.entry).not.toBe('');
    const otherSup = new EnclaveSupervisor({
      bundlePath: other.entry,
      env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
      logger: createLogger({}, { write: () => undefined }),
      restart: false,
    });
    sups.push(otherSup);
    otherSup.start();
    await otherSup.ready();
    await expect(otherSup.call('init', { sealedKeys: sealed })).rejects.toMatchObject({ code: 'E_SEAL' });
  }, 30_000);

  it('signData without a data ledger from the host fails the job with E_UNSUPPORTED', async () => {
    const j = await job('reverse', 'data', utf8('x'));
    const { dataLedger: _omit, ...noLedger } = domain;
    const e = await hostError(sup.call('runJob', { ...j.params, domain: noLedger }));
    expect(e.code).toBe('E_UNSUPPORTED');
  }, 30_000);
});
