import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import {
  buildJobRequest,
  buildSessionOpen,
  jobCommitments,
  openSessionInfo,
  SessionCodec,
  sealInput,
  sessionCommitments,
} from '@firn/client';
import { bytesToHex, type Hex, repoRoot, sha256, sharedPath } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createEnclaveProgram } from '../enclaveProgram.ts';
import { createSimulatedProvider } from '../evidence/simulated.ts';
import {
  type CloseSessionResult,
  createSessionHandlers,
  type OpenSessionResult,
} from '../jobs/inferenceSession.ts';
import { createRunJobHandler, type RunJobResult } from '../jobs/runJob.ts';
import { tinyLinearModel } from '../../test/testModels.ts';
import { WORKLOADS } from '../jobs/workloads/index.ts';
import { childProcessRuntime } from './mlRuntime.ts';

// The enclave program with its ML runtime in a child process (from TypeScript sources via tsx;
// the image runs the same code from its bundle, covered by the image and e2e tests). The host is
// played by hand: sealed inputs in a temp dir, on-chain values computed as a requester would.
const NOW = 1_750_000_000;
const dir = mkdtempSync(join(tmpdir(), 'firn-runtime-'));
const platform = await createSimulatedPlatform(await createSimulatedRoot());
const events: { event: string; data: { jobId: Hex; message: string } }[] = [];
const pids: number[] = [];
let onSpawn: (pid: number) => void = () => undefined;
const runtime = childProcessRuntime({
  modulePath: join(repoRoot(), 'packages', 'enclave', 'src', 'runtime', 'testWorkerEntry.ts'),
  execArgv: ['--import', 'tsx'],
  onSpawn: (pid) => {
    pids.push(pid);
    onSpawn(pid);
  },
});
const program = createEnclaveProgram(
  {
    provider: createSimulatedProvider(platform, sha256(new Uint8Array([3]))),
    measurementRegisters: [sha256(new Uint8Array([3]))],
    platformId: Uint8Array.from(Buffer.from(platform.platformId.slice(2), 'hex')),
    emit: (event, data) => events.push({ event, data: data as { jobId: Hex; message: string } }),
  },
  {
    runJob: createRunJobHandler({
      workloads: { ...WORKLOADS, probe: WORKLOADS.inference!, abort: WORKLOADS.inference! },
      served: { workloads: [...Object.keys(WORKLOADS), 'probe', 'abort'], firstParty: true },
      now: () => NOW,
      runtime,
    }),
  },
);
const identity = (await program.handle('init', {})) as { enclaveId: Hex; kemPublicKey: Hex };
const requesterKey = bytesToHex(generateSigningKey().privateKey);
const kem = await generateKemKeyPair();
const domain = { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' as Hex };
const banknote = new Uint8Array(readFileSync(sharedPath('datasets', 'banknote_authentication.csv')));
let n = 0;

async function job(kind: string, params: Record<string, unknown>, data: Uint8Array = banknote) {
  const s = await sealInput(data, 'text/csv', kem.publicKey);
  writeFileSync(join(dir, s.artifactId.slice(2)), s.sealed);
  const inputs = [{ role: 'dataset', artifactId: s.artifactId, dataKey: s.dataKey }];
  const jobId = bytesToHex(sha256(new Uint8Array([++n, 77])));
  const built = await buildJobRequest({
    jobId,
    kind: kind as 'training',
    inputs,
    params,
    requesterKey,
    enclave: identity,
    resultRecipient: kem.publicKey,
    domain,
    grantExpiresAt: NOW + 600,
    grantIssuedAt: NOW - 60,
  });
  const params2 = {
    jobId,
    enc: built.body.enc,
    request: built.body.ciphertext,
    inputPaths: { [s.artifactId]: join(dir, s.artifactId.slice(2)) },
    onChain: jobCommitments(kind, params, inputs),
    domain,
    outputDir: dir,
  };
  const opened = async () => {
    const out: Record<string, unknown>[] = [];
    for (const e of events.filter((x) => x.event === 'jobEvent' && x.data.jobId === jobId))
      out.push(JSON.parse(new TextDecoder().decode(await built.channel.openEvent(e.data.message))));
    return out;
  };
  return { jobId, run: () => program.handle('runJob', params2), opened };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

afterAll(() => {
  for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
});

describe('ML runtime in a child process', () => {
  it('trains in the child and signs the proof in the enclave; the child is gone afterwards', async () => {
    const j = await job('training', { task: 'classification', epochs: 2, hidden: [4], seed: 3 });
    const r = (await j.run()) as RunJobResult;
    expect(r.outputs.map((o) => o.role)).toContain('weights');
    const ev = await j.opened();
    expect(ev.filter((e) => e.type === 'epoch')).toHaveLength(2);
    expect(pids.length).toBeGreaterThan(0);
    await new Promise((res) => setTimeout(res, 100));
    expect(alive(pids.at(-1)!)).toBe(false);
  }, 60_000);

  it('the child gets no environment, no key material and no platform file name', async () => {
    process.env.FIRN_SIM_PLATFORM_PROBE = 'parent-secret-path';
    const j = await job('probe', {});
    const r = (await j.run()) as RunJobResult;
    const { openOutput } = await import('@firn/client');
    const out = await openOutput(new Uint8Array(readFileSync(r.outputs[0]!.path)), kem.privateKey);
    const seen = JSON.parse(new TextDecoder().decode(out.bytes)) as {
      env: string[];
      argv: string[];
      pid: number;
    };
    expect(seen.pid).not.toBe(process.pid);
    expect(seen.env.filter((k) => k.startsWith('FIRN'))).toEqual([]);
    expect(seen.argv).toEqual([]);
    delete process.env.FIRN_SIM_PLATFORM_PROBE;
  }, 60_000);

  it('a runtime killed by a native fault (SIGSEGV mid-training) fails only that job, typed', async () => {
    const j = await job('training', { task: 'classification', epochs: 200, hidden: [8], seed: 4 });
    // Crash the child once it is training: the moment it reports its first epoch.
    let crashed = false;
    onSpawn = (pid) => {
      const check = setInterval(() => {
        if (crashed || !alive(pid)) return clearInterval(check);
        // 'started' is sealed by the enclave; a second event is the child's first epoch.
        if (events.filter((e) => e.data.jobId === j.jobId).length >= 2) {
          crashed = true;
          process.kill(pid, 'SIGSEGV');
          clearInterval(check);
        }
      }, 20);
    };
    const before = events.length;
    const err = await j.run().catch((e: unknown) => e as { code: string; message: string });
    onSpawn = () => undefined;
    expect(crashed).toBe(true);
    expect(err).toMatchObject({ code: 'E_RUNTIME_CRASHED' });
    expect(events.length).toBeGreaterThan(before);
    const ev = await j.opened();
    expect(ev.at(-1)).toMatchObject({ stage: 'failed', error: { code: 'E_RUNTIME_CRASHED' } });
    expect(JSON.stringify(ev.at(-1))).toMatch(/SIGSEGV/);
  }, 60_000);

  it('abort() and process.exit() in the child fail the job typed; the enclave keeps serving', async () => {
    const signedFor = (id: Hex) => events.filter((x) => x.event === 'jobFailure' && x.data.jobId === id);
    for (const mode of ['abort', 'exit']) {
      const j = await job('abort', { mode });
      await expect(j.run()).rejects.toMatchObject({ code: 'E_RUNTIME_CRASHED' });
      // A dead runtime child is never the requester's committed work (decision 1595): not signed.
      expect(signedFor(j.jobId)).toHaveLength(0);
    }
    // A typed error raised in the child crosses as that code, its message only on the channel.
    const t = await job('abort', { mode: 'throw' });
    await expect(t.run()).rejects.toMatchObject({
      code: 'E_DATA_INVALID',
      message: expect.not.stringMatching(/typed failure/),
    });
    expect((await t.opened()).at(-1)).toMatchObject({ error: { message: 'typed failure from the runtime' } });
    // The app's own typed error, relayed from the child: signed for failJobAttested.
    expect(signedFor(t.jobId)).toHaveLength(1);
    // Same enclave program, same keys: the next job runs.
    const ok = await job('training', { task: 'classification', epochs: 1, hidden: [4], seed: 5 });
    expect(((await ok.run()) as RunJobResult).proof.signature).toMatch(/^0x/);
    expect(await program.handle('identity', {})).toMatchObject({ enclaveId: identity.enclaveId });
  }, 90_000);

  it("a crash of a session's runtime fails its requests typed, sealed; the session still closes with a proof", async () => {
    const sessions = createEnclaveProgram(
      {
        provider: createSimulatedProvider(platform, sha256(new Uint8Array([3]))),
        measurementRegisters: [sha256(new Uint8Array([3]))],
        platformId: Uint8Array.from(Buffer.from(platform.platformId.slice(2), 'hex')),
      },
      createSessionHandlers({ now: () => NOW, runtime }),
    );
    const ident = (await sessions.handle('init', {})) as { enclaveId: Hex; kemPublicKey: Hex };
    const model = tinyLinearModel();
    const sealed = await sealInput(model.bytes, 'application/onnx', kem.publicKey);
    writeFileSync(join(dir, sealed.artifactId.slice(2)), sealed.sealed);
    const jobId = bytesToHex(sha256(new Uint8Array([++n, 55])));
    const built = await buildSessionOpen({
      jobId,
      model: sealed,
      requesterKey,
      enclave: ident,
      resultRecipient: kem.publicKey,
      domain,
      grantExpiresAt: NOW + 600,
      grantIssuedAt: NOW - 60,
    });
    let sessionPid = 0;
    onSpawn = (pid) => {
      sessionPid = pid;
    };
    const r = (await sessions.handle('openSession', {
      jobId,
      enc: built.body.enc,
      request: built.body.ciphertext,
      inputPaths: { [sealed.artifactId]: join(dir, sealed.artifactId.slice(2)) },
      onChain: sessionCommitments(sealed.artifactId),
      domain,
    })) as OpenSessionResult;
    onSpawn = () => undefined;
    expect(await openSessionInfo(built.channel, r.response, jobId)).toMatchObject({ inputNames: ['x'] });
    const codec = new SessionCodec(built.secret, Buffer.from(r.salt.slice(2), 'hex'), jobId);
    const send = async (m: Uint8Array) =>
      new Uint8Array(
        Buffer.from(
          (
            (await sessions.handle('sessionRequest', {
              sessionId: jobId,
              message: Buffer.from(m).toString('base64'),
            })) as {
              message: string;
            }
          ).message,
          'base64',
        ),
      );
    const x = { x: { type: 'float32' as const, dims: [1, 3], data: Float32Array.of(1, 2, 3) } };
    const ok = codec.sealRequest(x);
    expect(codec.openResponse(ok, await send(ok)).y!.dims).toEqual([1, 2]);
    expect(sessionPid).toBeGreaterThan(0);
    process.kill(sessionPid, 'SIGSEGV');
    await new Promise((res) => setTimeout(res, 200));
    // The request after the crash gets a sealed error the requester opens; the host sees bytes only.
    const after = codec.sealRequest(x);
    const sealedError = await send(after);
    expect(() => codec.openResponse(after, sealedError)).toThrow(
      expect.objectContaining({ code: 'E_RUNTIME_CRASHED' }),
    );
    const c = (await sessions.handle('closeSession', { sessionId: jobId })) as CloseSessionResult;
    expect(c.requests).toBe(2);
    expect(c.proof.signature).toMatch(/^0x/);
    expect(await sessions.handle('identity', {})).toMatchObject({ enclaveId: ident.enclaveId });
  }, 60_000);
});
