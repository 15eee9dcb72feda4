import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSessionOpen, SessionCodec, sealInput, sessionCommitments } from '@firn/client';
import { bytesToHex, type Hex, repoRoot, sha256 } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, describe, expect, it } from 'vitest';
import { loopForeverModel } from '../helpers/loopForeverModel.ts';
import { createEnclaveProgram } from '../../packages/enclave/src/enclaveProgram.ts';
import { createSimulatedProvider } from '../../packages/enclave/src/evidence/simulated.ts';
import {
  createSessionHandlers,
  type OpenSessionResult,
} from '../../packages/enclave/src/jobs/inferenceSession.ts';
import { childProcessRuntime } from '../../packages/enclave/src/runtime/mlRuntime.ts';
import { SessionRelay } from '../../packages/node/src/jobs/sessionRelay.ts';

// The attack: a model owner's model that never finishes a request (an ONNX Loop with an
// astronomically large trip count; any request starts it). The session's child then spins a CPU
// core inside onnxruntime. When the host closes the session (or the enclave drops it), the close
// waits behind the stuck request in the child and the enclave's release (which would kill the
// child) is queued behind that close: nothing ever kills the child. Every such session leaves a
// process burning a core after its session has ended; a few exhaust the node for every other
// requester. (One-shot jobs have a deadline that kills their child: app-workload-hangs.test.ts.)

const NOW = 1_750_000_000;
const dir = mkdtempSync(join(tmpdir(), 'firn-hang-'));
const platform = await createSimulatedPlatform(await createSimulatedRoot());
const pids: number[] = [];
const runtime = childProcessRuntime({
  modulePath: join(repoRoot(), 'packages', 'enclave', 'src', 'runtime', 'testWorkerEntry.ts'),
  execArgv: ['--import', 'tsx'],
  onSpawn: (pid) => pids.push(pid),
});
const program = createEnclaveProgram(
  {
    provider: createSimulatedProvider(platform, sha256(new Uint8Array([9]))),
    measurementRegisters: [sha256(new Uint8Array([9]))],
    platformId: Uint8Array.from(Buffer.from(platform.platformId.slice(2), 'hex')),
  },
  createSessionHandlers({ now: () => NOW, runtime }),
);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
afterAll(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
});

describe('a session whose model never finishes a request', () => {
  it('does not leave its runtime child running after the session is closed', async () => {
    const ident = (await program.handle('init', {})) as { enclaveId: Hex; kemPublicKey: Hex };
    const kem = await generateKemKeyPair();
    const sealed = await sealInput(loopForeverModel(), 'application/onnx', kem.publicKey);
    writeFileSync(join(dir, sealed.artifactId.slice(2)), sealed.sealed);
    const jobId = bytesToHex(sha256(new Uint8Array([1, 99])));
    const domain = { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' as Hex };
    const built = await buildSessionOpen({
      jobId,
      model: sealed,
      requesterKey: bytesToHex(generateSigningKey().privateKey),
      enclave: ident,
      resultRecipient: kem.publicKey,
      domain,
      grantExpiresAt: NOW + 600,
      grantIssuedAt: NOW - 60,
    });
    const r = (await program.handle('openSession', {
      jobId,
      enc: built.body.enc,
      request: built.body.ciphertext,
      inputPaths: { [sealed.artifactId]: join(dir, sealed.artifactId.slice(2)) },
      onChain: sessionCommitments(sealed.artifactId),
      domain,
      direct: true,
    })) as OpenSessionResult;
    expect(pids.length).toBe(1);
    const child = pids[0]!;
    const codec = new SessionCodec(built.secret, Buffer.from(r.salt.slice(2), 'hex'), jobId);
    const relay = await SessionRelay.connect(r.endpoint!.path, r.endpoint!.token);
    const q = codec.sealRequest({ x: { type: 'float32', dims: [1, 3], data: Float32Array.of(1, 2, 3) } });
    relay.send(q).catch(() => undefined); // never answered
    await new Promise((res) => setTimeout(res, 1000));
    // The host gives up on the session and closes it (the node would then fail the job).
    const closed = program.handle('closeSession', { sessionId: jobId }).then(
      () => 'closed',
      () => 'refused',
    );
    // The node's own call to the enclave gives up after 30 s: by then the close must have settled.
    const until = Date.now() + 25_000;
    const outcome = await Promise.race([closed, new Promise((res) => setTimeout(() => res('hung'), 25_000))]);
    relay.close();
    // Whatever the close answered, the session is over: its child must not keep burning a core.
    while (alive(child) && Date.now() < until) await new Promise((res) => setTimeout(res, 200));
    expect({ settled: outcome !== 'hung', childAlive: alive(child) }).toEqual({
      settled: true,
      childAlive: false,
    });
  }, 60_000);
});
