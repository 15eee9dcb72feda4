import { hashSignedData } from '@firn/chain';
import { bytesToHex, FirnError, type Hex, sha256, signedDataDigest, signedDataHash, utf8 } from '@firn/core';
import { generateSigningKey, recoverAddress } from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import {
  appErrorBody,
  COMMIT_TAG,
  checkWorkloadResult,
  commitmentDigest,
  createWorkloadContext,
  defineApp,
  describeApp,
  isFirnApp,
  seededRandom,
  verifyCommitment,
} from './index.ts';
import { signDataRecord } from './signData.ts';
import { runWorkload } from './testing.ts';

const code = async (p: Promise<unknown> | (() => unknown)) => {
  try {
    await (typeof p === 'function' ? p() : p);
    return 'ok';
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

const app = defineApp({
  name: 'example',
  version: '1.0.0',
  workloads: {
    async reverse(ctx) {
      const data = ctx.input('data');
      await ctx.signData(sha256(data), { topic: 'digest' });
      ctx.progress({ n: data.length });
      return {
        outputs: [{ role: 'result', contentType: 'text/plain', bytes: data.slice().reverse() }],
        workUnits: 1n,
      };
    },
    async twice() {
      const o = { role: 'a', contentType: 'text/plain', bytes: new Uint8Array(1) };
      return { outputs: [o, o], workUnits: 1n };
    },
  },
});

describe('defineApp', () => {
  it('checks the name, version and workload names, and freezes the app', async () => {
    expect(isFirnApp(app)).toBe(true);
    expect(describeApp(app)).toEqual({
      format: 'firn/app/v1',
      name: 'example',
      version: '1.0.0',
      workloads: ['reverse', 'twice'],
    });
    expect(Object.isFrozen(app.workloads)).toBe(true);
    const w = async () => ({ outputs: [], workUnits: 0n });
    expect(await code(() => defineApp({ name: 'Bad Name', version: '1', workloads: { w } }))).toBe(
      'E_INVALID_INPUT',
    );
    expect(await code(() => defineApp({ name: 'x', version: '1 0', workloads: { w } }))).toBe(
      'E_INVALID_INPUT',
    );
    expect(await code(() => defineApp({ name: 'x', version: '1', workloads: {} }))).toBe('E_INVALID_INPUT');
    expect(await code(() => defineApp({ name: 'x', version: '1', workloads: { 'Run/Me': w } }))).toBe(
      'E_INVALID_INPUT',
    );
    expect(
      await code(() => defineApp({ name: 'x', version: '1', workloads: { w: 'no' as unknown as typeof w } })),
    ).toBe('E_INVALID_INPUT');
  });
});

describe('the workload context', () => {
  const ctx = createWorkloadContext({
    params: {},
    inputs: [{ role: 'data', artifactId: `0x${'00'.repeat(32)}`, contentType: 'x', bytes: utf8('abc') }],
    progress: () => undefined,
    now: () => 5,
  });
  it('input(role) returns the bytes, and a missing role is E_INPUT_INVALID naming what the job has', () => {
    expect(new TextDecoder().decode(ctx.input('data'))).toBe('abc');
    expect(() => ctx.input('model')).toThrow(
      expect.objectContaining({ code: 'E_INPUT_INVALID', message: expect.stringMatching(/"model".*"data"/) }),
    );
  });
  it('random(n) gives n fresh bytes and refuses sizes outside 0..65536', async () => {
    expect(ctx.random(32)).toHaveLength(32);
    expect(bytesToHex(ctx.random(16))).not.toBe(bytesToHex(ctx.random(16)));
    expect(await code(() => ctx.random(65537))).toBe('E_INVALID_INPUT');
    expect(await code(() => ctx.random(-1))).toBe('E_INVALID_INPUT');
  });
  it('signData without an enclave behind it is E_UNSUPPORTED', async () => {
    expect(await code(ctx.signData(new Uint8Array(32), { topic: 't' }))).toBe('E_UNSUPPORTED');
  });
});

describe('app errors', () => {
  it('keep app codes and messages, turn framework codes and untyped throws into E_JOB_FAILED', () => {
    expect(appErrorBody(new FirnError('E_DATA_INVALID', 'row 3'))).toEqual({
      code: 'E_DATA_INVALID',
      message: 'row 3',
    });
    expect(appErrorBody(new FirnError('E_GRANT_EXPIRED', 'lie'))).toEqual({
      code: 'E_JOB_FAILED',
      message: 'lie',
    });
    expect(appErrorBody({ code: 'E_IMAGE_MISMATCH', message: 'lie' }).code).toBe('E_JOB_FAILED');
    expect(appErrorBody(new Error('x'.repeat(5000))).message).toHaveLength(1024);
    expect(appErrorBody('a string')).toEqual({ code: 'E_JOB_FAILED', message: 'the workload failed' });
  });
  it('checkWorkloadResult refuses duplicate roles, no outputs, bad workUnits', async () => {
    const o = { role: 'a', contentType: 't', bytes: new Uint8Array(0) };
    expect(await code(() => checkWorkloadResult({ outputs: [o, o], workUnits: 1n }))).toBe('E_JOB_FAILED');
    expect(await code(() => checkWorkloadResult({ outputs: [], workUnits: 1n }))).toBe('E_JOB_FAILED');
    expect(await code(() => checkWorkloadResult({ outputs: [o], workUnits: 1n << 64n }))).toBe(
      'E_JOB_FAILED',
    );
    expect(await code(() => checkWorkloadResult({ outputs: [o], workUnits: 1 as unknown as bigint }))).toBe(
      'E_JOB_FAILED',
    );
    expect(await code(() => checkWorkloadResult({ outputs: [{ ...o, role: 'A/b' }], workUnits: 1n }))).toBe(
      'E_JOB_FAILED',
    );
  });
});

describe('signed-data records', () => {
  const key = generateSigningKey();
  const enclaveId = sha256(utf8('enclave'));
  const ledger = { chainId: 31337, address: '0x00000000000000000000000000000000000000dd' as Hex };
  const rec = signDataRecord(
    { signingKey: key.privateKey, enclaveId },
    ledger,
    sha256(utf8('data')),
    'digest',
  );
  const signer = (d: Hex) =>
    recoverAddress(Buffer.from(d.slice(2), 'hex'), Buffer.from(rec.signature.slice(2), 'hex'));

  it('sign the data ledger EIP-712 struct (same digest as the chain package computes) with a tagged dataHash', () => {
    const d = signedDataDigest(ledger, rec);
    expect(d).toBe(hashSignedData({ chainId: 31337, verifyingContract: ledger.address }, rec));
    expect(signer(d)).toBe(key.address);
    expect(rec.enclaveAddress).toBe(key.address);
    expect(rec.dataHash).toBe(signedDataHash('digest', rec.digest));
    expect(rec.dataHash).not.toBe(rec.digest);
    expect(rec.uri).toBe('firn:data:digest');
  });
  it('a record with one byte changed (digest, topic, ledger, chain) no longer recovers to the signer', () => {
    const otherDigest = bytesToHex(sha256(utf8('datb')));
    expect(
      signer(signedDataDigest(ledger, { ...rec, dataHash: signedDataHash('digest', otherDigest) })),
    ).not.toBe(key.address);
    expect(
      signer(signedDataDigest(ledger, { ...rec, dataHash: signedDataHash('digesu', rec.digest) })),
    ).not.toBe(key.address);
    expect(signer(signedDataDigest({ ...ledger, chainId: 1 }, rec))).not.toBe(key.address);
    expect(signer(signedDataDigest({ ...ledger, address: `0x${'00'.repeat(19)}de` }, rec))).not.toBe(
      key.address,
    );
  });
  it('refuse a digest that is not 32 bytes and a malformed topic', async () => {
    const s = { signingKey: key.privateKey, enclaveId };
    expect(await code(() => signDataRecord(s, ledger, new Uint8Array(31), 'digest'))).toBe('E_INVALID_INPUT');
    expect(await code(() => signDataRecord(s, ledger, new Uint8Array(32), 'Bad Topic'))).toBe(
      'E_INVALID_INPUT',
    );
    expect(await code(() => signDataRecord(s, ledger, new Uint8Array(32), 'x'.repeat(65)))).toBe(
      'E_INVALID_INPUT',
    );
  });
});

describe('@firn/app/testing', () => {
  it('runs a workload without an enclave: outputs, events and records', async () => {
    const r = await runWorkload(app, 'reverse', { inputs: { data: utf8('abc') } });
    expect(new TextDecoder().decode(r.outputs[0]!.bytes)).toBe('cba');
    expect(r.events).toEqual([{ n: 3 }]);
    expect(r.records[0]!.enclaveAddress).toBe(r.signerAddress);
  });
  it('refuses an unknown workload (E_UNSUPPORTED), a missing role (E_INPUT_INVALID) and a result the enclave would refuse', async () => {
    expect(await code(runWorkload(app, 'nosuch'))).toBe('E_UNSUPPORTED');
    expect(await code(runWorkload(app, 'reverse'))).toBe('E_INPUT_INVALID');
    expect(await code(runWorkload(app, 'twice'))).toBe('E_JOB_FAILED');
  });
});

describe('ctx.random from a per-job seed (1080, Randomness)', () => {
  const seed = sha256(utf8('job seed'));
  const ctxOf = (randomSeed: Uint8Array) =>
    createWorkloadContext({ params: {}, inputs: [], progress: () => undefined, now: () => 0, randomSeed });
  it('the same seed and calls give the same bytes (a re-run draws nothing new); another seed differs', () => {
    const a = ctxOf(seed);
    const b = ctxOf(Uint8Array.from(seed));
    const drawsA = [a.random(5), a.random(40), a.random(0), a.random(1000)].map(bytesToHex);
    const drawsB = [b.random(5), b.random(40), b.random(0), b.random(1000)].map(bytesToHex);
    expect(drawsB).toEqual(drawsA);
    expect(bytesToHex(ctxOf(sha256(utf8('other job'))).random(5))).not.toBe(drawsA[0]);
    // Successive draws do not repeat the stream.
    expect(drawsA[1]!.slice(2, 12)).not.toBe(drawsA[0]!.slice(2, 12));
  });
  it('splitting a draw gives the same stream as one draw', () => {
    const one = seededRandom(seed)(64);
    const r = seededRandom(seed);
    expect(bytesToHex(new Uint8Array([...r(7), ...r(57)]))).toBe(bytesToHex(one));
  });
  it('refuses a seed that is not 32 bytes', () => {
    expect(() => seededRandom(new Uint8Array(31))).toThrow(/32 bytes/);
  });
});

describe('ctx.commit: a public digest that confirms no guess (1769)', () => {
  const ctxOf = (seed?: Uint8Array) =>
    createWorkloadContext({
      params: {},
      inputs: [],
      progress: () => {},
      now: () => 0,
      ...(seed ? { randomSeed: seed } : {}),
    });

  it('an adversary hashing every candidate of a guessable input finds none in the digest', () => {
    const secret = utf8('vote: no');
    const c = ctxOf().commit(secret);
    const candidates = ['vote: yes', 'vote: no', 'vote: abstain'].map(utf8);
    // The plain hash, and the commitment under a guessed (all-zero) salt: neither matches.
    for (const g of candidates) {
      expect(bytesToHex(sha256(g))).not.toBe(bytesToHex(c.digest));
      expect(verifyCommitment(c.digest, new Uint8Array(32), g)).toBe(false);
    }
    // Two commitments to the same input differ: equal inputs are not linkable on chain either.
    expect(bytesToHex(ctxOf().commit(secret).digest)).not.toBe(bytesToHex(c.digest));
  });

  it('the holder of the salt opens it; another input or salt does not', () => {
    const data = utf8('hello');
    const c = ctxOf().commit(data);
    expect(c.salt.length).toBe(32);
    expect(c.digest.length).toBe(32);
    expect(verifyCommitment(c.digest, c.salt, data)).toBe(true);
    expect(verifyCommitment(bytesToHex(c.digest), c.salt, data)).toBe(true);
    expect(verifyCommitment(c.digest, c.salt, utf8('hellO'))).toBe(false);
    // The digest is SHA-256(tag || salt || bytes).
    const m = new Uint8Array([...utf8(COMMIT_TAG), ...c.salt, ...data]);
    expect(bytesToHex(commitmentDigest(c.salt, data))).toBe(bytesToHex(sha256(m)));
  });

  it('draws its salt from the per-job stream, so a re-run of a job commits the same way', () => {
    const seed = new Uint8Array(32).fill(7);
    const a = ctxOf(seed).commit(utf8('x'));
    const b = ctxOf(seed).commit(utf8('x'));
    expect(bytesToHex(a.digest)).toBe(bytesToHex(b.digest));
    expect(bytesToHex(a.salt)).toBe(bytesToHex(seededRandom(seed)(32)));
  });

  it('refuses what is not bytes, and a salt that is not 32 bytes, with E_INVALID_INPUT', async () => {
    expect(await code(() => ctxOf().commit('text' as unknown as Uint8Array))).toBe('E_INVALID_INPUT');
    expect(await code(() => commitmentDigest(new Uint8Array(16), utf8('x')))).toBe('E_INVALID_INPUT');
    expect(await code(() => verifyCommitment('0x12', new Uint8Array(32), utf8('x')))).toBe('E_INVALID_INPUT');
  });
});
