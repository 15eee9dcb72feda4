import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { buildSessionOpen, sealInput, sessionCommitments } from '@firn/client';
import { bytesToHex, type Hex, hexBytes, sha256 } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { loadOnnxModel } from '@firn/ml';
import { describe, expect, it } from 'vitest';
import { createEnclaveProgram } from '../../packages/enclave/src/enclaveProgram.ts';
import { createSimulatedProvider } from '../../packages/enclave/src/evidence/simulated.ts';
import { createSessionHandlers } from '../../packages/enclave/src/jobs/inferenceSession.ts';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';

// Attack (malicious host): the market pays the whole escrow for any accepted Work Proof, and the
// enclave signs a session's proof whenever the host closes it, with or without the requester's
// close message. A host that claims a session, lets the enclave open it, and closes it at once
// gets a valid proof of a session that answered nothing (workUnits 0, an empty transcript the
// requester's own transcript agrees with) and, after the challenge window, the full escrow.
const now = 1_750_000_000;
const dir = mkdtempSync(join(tmpdir(), 'firn-attack-close-'));
const platform = await createSimulatedPlatform(await createSimulatedRoot());
const program = createEnclaveProgram(
  {
    provider: createSimulatedProvider(platform, sha256(new Uint8Array([2]))),
    measurementRegisters: [sha256(new Uint8Array([2]))],
    platformId: hexBytes(platform.platformId, 'platformId'),
  },
  createSessionHandlers({
    now: () => now,
    maxSessions: 2,
    idleSeconds: 300,
    loadModel: (b) => loadOnnxModel(b),
  }),
);
const identity = (await program.handle('init', {})) as {
  enclaveId: Hex;
  kemPublicKey: Hex;
  enclaveAddress: Hex;
};

describe('attack: host closes a session right after opening it', () => {
  it('gets no Work Proof (nothing to be paid for) for a session that answered no request', async () => {
    const kem = await generateKemKeyPair();
    const model = await sealInput(tinyLinearModel().bytes, 'application/onnx', kem.publicKey);
    writeFileSync(join(dir, model.artifactId.slice(2)), model.sealed);
    const jobId = bytesToHex(sha256(new Uint8Array([9, 9, 9])));
    const domain = { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' as Hex };
    const built = await buildSessionOpen({
      jobId,
      model,
      requesterKey: bytesToHex(generateSigningKey().privateKey),
      enclave: identity,
      resultRecipient: kem.publicKey,
      domain,
      grantExpiresAt: now + 3600,
      grantIssuedAt: now - 60,
    });
    await program.handle('openSession', {
      jobId,
      enc: built.body.enc,
      request: built.body.ciphertext,
      inputPaths: { [model.artifactId]: join(dir, model.artifactId.slice(2)) },
      onChain: sessionCommitments(model.artifactId),
      domain,
    });
    // The host's own close, no requester message, no idle time passed, no request served.
    const outcome = await program.handle('closeSession', { sessionId: jobId }).then(
      (r) => r as { proof?: unknown; requests?: number },
      (e: { code?: string }) => ({ refused: e.code }),
    );
    expect(outcome, 'the host got a payable proof for a session it never served').not.toHaveProperty('proof');
  });
});
