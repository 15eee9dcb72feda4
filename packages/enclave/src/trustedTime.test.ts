import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { buildJobRequest, jobCommitments, sealInput } from '@firn/client';
import { bytesToHex, type Hex, hexBytes, sha256 } from '@firn/core';
import { type CreateGrantParams, generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import { createEnclaveProgram } from './enclaveProgram.ts';
import { createSimulatedProvider } from './evidence/simulated.ts';
import { createRunJobHandler } from './jobs/runJob.ts';
import { tinyLinearModel } from '../test/testModels.ts';
import { FIRST_PARTY_SERVED, WORKLOADS } from './jobs/workloads/index.ts';
import { MAX_AHEAD_SECONDS, type SealedState } from './trustedTime.ts';

// The host sets the enclave's clock (here: `hostNow`). The attack: rewind it so that an expired
// grant looks valid again. In process, no chain; grants are made as a requester would make them.
const T = 1_750_000_000;
let hostNow = T;
const dir = mkdtempSync(join(tmpdir(), 'firn-time-'));
const platform = await createSimulatedPlatform(await createSimulatedRoot());
const registers = [sha256(new Uint8Array([4]))];
const states: SealedState[] = [];

function enclave() {
  return createEnclaveProgram(
    {
      provider: createSimulatedProvider(platform, registers[0]!),
      measurementRegisters: registers,
      platformId: hexBytes(platform.platformId, 'platformId'),
      emit: (event, data) => {
        if (event === 'enclaveState') states.push((data as { sealedState: SealedState }).sealedState);
      },
    },
    { runJob: createRunJobHandler({ workloads: WORKLOADS, served: FIRST_PARTY_SERVED, now: () => hostNow }) },
  );
}

const program = enclave();
const init = (await program.handle('init', {})) as { enclaveId: Hex; kemPublicKey: Hex; sealedKeys: unknown };
const requesterKey = bytesToHex(generateSigningKey().privateKey);
const kem = await generateKemKeyPair();
const domain = { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' as Hex };
const model = tinyLinearModel();
const input = JSON.stringify({ x: { dims: [1, 3], type: 'float32', data: [1, 2, 3] } });
let n = 0;

async function job(grant: { issuedAt: number; expiresAt: number }) {
  const m = await sealInput(model.bytes, 'application/onnx', kem.publicKey);
  const i = await sealInput(new TextEncoder().encode(input), 'application/json', kem.publicKey);
  for (const s of [m, i]) writeFileSync(join(dir, s.artifactId.slice(2)), s.sealed);
  const inputs = [
    { role: 'model', artifactId: m.artifactId, dataKey: m.dataKey },
    { role: 'input', artifactId: i.artifactId, dataKey: i.dataKey },
  ];
  const jobId = bytesToHex(sha256(new Uint8Array([++n, 99])));
  const built = await buildJobRequest({
    jobId,
    kind: 'inference',
    inputs,
    params: {},
    requesterKey,
    enclave: init,
    resultRecipient: kem.publicKey,
    domain,
    grantExpiresAt: grant.expiresAt,
    grantIssuedAt: grant.issuedAt,
    mutateGrant: (g: CreateGrantParams) => g,
  });
  return {
    jobId,
    enc: built.body.enc,
    request: built.body.ciphertext,
    inputPaths: Object.fromEntries([m, i].map((s) => [s.artifactId, join(dir, s.artifactId.slice(2))])),
    onChain: jobCommitments('inference', {}, inputs),
    domain,
    outputDir: dir,
  };
}

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

describe('enclave time floor', () => {
  it('a host that rewinds its clock cannot run a grant that expired at a time the enclave has seen', async () => {
    const grant = { issuedAt: T, expiresAt: T + 600 };
    const replay = await job(grant);
    // Positive control: at T+10 the grant is valid.
    hostNow = T + 10;
    expect(await code(program.handle('runJob', await job(grant)))).toBe('ok');
    // Time passes honestly: a job at T+1000 (its grant made then) moves the floor past T+600.
    hostNow = T + 1000;
    expect(await code(program.handle('runJob', await job({ issuedAt: T + 1000, expiresAt: T + 1600 })))).toBe(
      'ok',
    );
    expect(program.ctx.time.floor()).toBeGreaterThanOrEqual(T + 1000);
    // The attack: the host rewinds to T+20 and sends the old request again.
    hostNow = T + 20;
    expect(await code(program.handle('runJob', replay))).toBe('E_GRANT_EXPIRED');
  });

  it('the floor survives a restart through the sealed state; a fresh enclave without it is the known gap', async () => {
    expect(states.length).toBeGreaterThan(0);
    const restarted = enclave();
    await restarted.handle('init', { sealedKeys: init.sealedKeys, sealedState: states.at(-1) });
    expect(restarted.ctx.time.floor()).toBeGreaterThanOrEqual(T + 1000);
    hostNow = T + 30;
    expect(await code(restarted.handle('runJob', await job({ issuedAt: T, expiresAt: T + 600 })))).toBe(
      'E_GRANT_EXPIRED',
    );
    // A state blob altered or sealed by another enclave does not open.
    const bad = { ...states.at(-1)!, ct: `${states.at(-1)!.ct.slice(0, -2)}00` };
    await expect(
      enclave().handle('init', { sealedKeys: init.sealedKeys, sealedState: bad }),
    ).rejects.toMatchObject({
      code: 'E_SEAL',
    });
  });

  it("a grant's signed chain time holds even when the host clock is behind it", async () => {
    const fresh = enclave();
    await fresh.handle('init', { sealedKeys: init.sealedKeys });
    // The host says T+5, the grant was made at T+590 and expires at T+600: it runs (the enclave's
    // time is at least T+590), and a grant that expired by its own issuedAt never does.
    hostNow = T + 5;
    expect(await code(fresh.handle('runJob', await job({ issuedAt: T + 590, expiresAt: T + 600 })))).toBe(
      'ok',
    );
    expect(fresh.ctx.time.floor()).toBeGreaterThanOrEqual(T + 5 + MAX_AHEAD_SECONDS - 1);
    expect(await code(fresh.handle('runJob', await job({ issuedAt: T + 600, expiresAt: T + 600 })))).toBe(
      'E_GRANT_EXPIRED',
    );
  });

  it('one requester cannot push the floor far ahead to expire everyone else (cap per grant)', async () => {
    const fresh = enclave();
    await fresh.handle('init', { sealedKeys: init.sealedKeys });
    hostNow = T;
    // A grant signed with a far-future chain time raises the floor by at most MAX_AHEAD_SECONDS.
    expect(
      await code(fresh.handle('runJob', await job({ issuedAt: T + 10 ** 6, expiresAt: T + 10 ** 6 + 60 }))),
    ).toBe('ok');
    expect(fresh.ctx.time.floor()).toBeLessThanOrEqual(T + MAX_AHEAD_SECONDS);
    // Repeating it (more jobs, more inputs) does not add up.
    for (let k = 0; k < 3; k++)
      await fresh.handle('runJob', await job({ issuedAt: T + 10 ** 6, expiresAt: T + 10 ** 6 + 60 }));
    expect(fresh.ctx.time.floor()).toBeLessThanOrEqual(T + MAX_AHEAD_SECONDS);
    expect(await code(fresh.handle('runJob', await job({ issuedAt: T, expiresAt: T + 3600 })))).toBe('ok');
  });
});

describe('sealed state blobs from the host', () => {
  it('are refused with a truncated tag or an IV of another length, even when they authenticate', async () => {
    const { createCipheriv, randomBytes } = await import('node:crypto');
    const { createTrustedTime } = await import('./trustedTime.ts');
    const { encodeFields, TAGS, utf8 } = await import('@firn/core');
    const key = new Uint8Array(randomBytes(32));
    const measurement = sha256(new Uint8Array([9]));
    /** A blob sealed under the real key and AAD, with the tag and IV lengths given. */
    const blob = (floor: number, tagLength: number, ivLength = 12) => {
      const iv = randomBytes(ivLength);
      const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: tagLength });
      c.setAAD(encodeFields([utf8(TAGS.enclaveState), measurement]));
      const pt = utf8(JSON.stringify({ v: 1, floor }));
      const ct = Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
      return { v: 1 as const, iv: bytesToHex(iv), ct: bytesToHex(ct) };
    };
    const time = createTrustedTime({ measurement });
    time.restore(blob(100, 16), key);
    expect(time.floor()).toBe(100);
    // A 4-byte tag is 2^32 tries for a host that forges (init may be called again and again).
    for (const [tag, iv] of [
      [4, 12],
      [8, 12],
      [12, 12],
      [16, 16],
    ] as const) {
      expect(() => time.restore(blob(9_999_999_999, tag, iv), key)).toThrow(
        expect.objectContaining({ code: 'E_SEAL' }),
      );
    }
    expect(time.floor()).toBe(100);
  });
});
