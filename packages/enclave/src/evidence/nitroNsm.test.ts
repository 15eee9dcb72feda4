import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nitroVerifier } from '@firn/attestation';
import { bytesToHex, measurementDigest, repoRoot } from '@firn/core';
import { decode, encode } from 'cborg';
import { describe, expect, it } from 'vitest';
import {
  MAX_NSM_RESPONSE_BYTES,
  NitroNsmEvidenceProvider,
  nitroEnvironment,
  nsmAttestationDocument,
  nsmAttestationRequest,
} from './nitroNsm.ts';
import { environmentFromEnv } from './environmentFromEnv.ts';
import { createEnclaveProgram } from '../enclaveProgram.ts';
import {
  makeSyntheticNitroDocument,
  makeSyntheticNitroPki,
} from '../../../attestation/test/nitro/syntheticNitro.ts';

// A fake device tree: <root>/dev/nsm exists, and a fake NSM helper (a separate process, as the real
// ioctl helper is) records the CBOR request next to the device and answers with a prepared CBOR
// response wrapping a captured REAL attestation document (packages/attestation/vectors/nitro).
// The real documents carry other user_data than the provider asks for, so the provider must refuse
// them (a confused helper); documents that answer the request are synthetic (a test PKI).
// Not covered: a real NSM signing a document over the written user_data (no Nitro hardware here).
const VECTORS = join(repoRoot(), 'packages', 'attestation', 'vectors', 'nitro');
const REAL = [
  { file: 'base-nitro-validator-2024-11-30.cbor', at: 1732990000 },
  { file: 'eternis-debug-2024-09-17.cbor', at: 1726606091 },
];
const rd = new Uint8Array(64).map((_, i) => 255 - i);

function tree(response: Uint8Array, opts: { exit?: number } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'firn-nsm-'));
  mkdirSync(join(root, 'dev'));
  const dev = join(root, 'dev', 'nsm');
  writeFileSync(dev, '');
  writeFileSync(`${dev}.response`, response);
  const helper = join(root, 'nsm-helper.cjs');
  writeFileSync(
    helper,
    `const fs = require('node:fs');
const dev = process.argv[2];
if (!fs.existsSync(dev)) process.exit(3);
fs.writeFileSync(dev + '.request', fs.readFileSync(0));
process.stdout.write(fs.readFileSync(dev + '.response'));
process.exitCode = ${opts.exit ?? 0};
`,
  );
  chmodSync(helper, 0o700);
  return { root, dev, helper: [process.execPath, helper, '{device}'] };
}

const attestationResponse = (document: Uint8Array) =>
  encode(new Map([['Attestation', new Map([['document', document]])]]));

describe('NitroNsmEvidenceProvider (fake /dev/nsm tree, real documents)', () => {
  for (const v of REAL) {
    it(`sends the 64 report-data bytes as user_data; the real ${v.file}, bound to other user_data, is refused (a confused helper)`, async () => {
      const doc = new Uint8Array(readFileSync(join(VECTORS, v.file)));
      // The document itself is genuine: the verifier accepts it at its time.
      const facts = await nitroVerifier.verify(nitroVerifier.parse(doc), { now: v.at });
      expect(facts.teeType).toBe('nitro');
      const t = tree(attestationResponse(doc));
      const p = new NitroNsmEvidenceProvider({ root: t.root, helper: t.helper });
      await expect(p.quote(rd)).rejects.toMatchObject({
        code: 'E_CONFLICT',
        message: expect.stringContaining('user_data'),
      });
      const req = decode(readFileSync(`${t.dev}.request`), { useMaps: true }) as Map<
        string,
        Map<string, unknown>
      >;
      expect([...req.keys()]).toEqual(['Attestation']);
      const att = req.get('Attestation')!;
      expect(Buffer.from(att.get('user_data') as Uint8Array).equals(Buffer.from(rd))).toBe(true);
      expect(att.get('nonce')).toBeNull();
      expect(att.get('public_key')).toBeNull();
    });
  }

  it('returns a document bound to exactly the requested report data unchanged, which verifies', async () => {
    const pki = await makeSyntheticNitroPki();
    const doc = await makeSyntheticNitroDocument(pki, { userData: rd });
    const t = tree(attestationResponse(doc));
    const p = new NitroNsmEvidenceProvider({ root: t.root, helper: t.helper });
    const { quote } = await p.quote(rd);
    expect(Buffer.from(quote).equals(Buffer.from(doc))).toBe(true);
    const facts = await nitroVerifier.verify(nitroVerifier.parse(quote), {
      now: Date.parse('2025-01-01T00:00:20Z') / 1000,
      roots: [pki.rootDer],
    });
    expect(Buffer.from(facts.reportData)).toEqual(Buffer.from(rd));
  });

  it('attack: a helper answering with a genuine document for other report data (another request, a replay) is caught in the enclave', async () => {
    const pki = await makeSyntheticNitroPki();
    const other = new Uint8Array(64).fill(7);
    const shorter = rd.slice(0, 32);
    for (const userData of [other, shorter, null, new Uint8Array([...rd, 0])]) {
      const doc = await makeSyntheticNitroDocument(pki, { userData, nonce: rd });
      const t = tree(attestationResponse(doc));
      const p = new NitroNsmEvidenceProvider({ root: t.root, helper: t.helper });
      await expect(p.quote(rd)).rejects.toMatchObject({ code: 'E_CONFLICT' });
    }
  });

  it('learns its own identity from its document: the same measurement and platform a verifier derives', async () => {
    const pki = await makeSyntheticNitroPki();
    const doc = await makeSyntheticNitroDocument(pki, {
      userData: new Uint8Array(64),
      moduleId: 'i-0de38b2b6853cc9e8-enc0193fd1e2ab9f5d1',
    });
    const t = tree(attestationResponse(doc));
    const env = await nitroEnvironment({ root: t.root, helper: t.helper });
    expect(env.measurementRegisters).toHaveLength(4);
    expect(Buffer.from(env.platformId).toString('utf8')).toBe('i-0de38b2b6853cc9e8');
    const facts = await nitroVerifier.verify(nitroVerifier.parse(doc), {
      now: Date.parse('2025-01-01T00:00:20Z') / 1000,
      roots: [pki.rootDer],
    });
    expect(Buffer.from(measurementDigest(env.provider.teeType, env.measurementRegisters))).toEqual(
      Buffer.from(facts.measurement),
    );
    expect(Buffer.from(env.platformId)).toEqual(Buffer.from(facts.platformId));
  });

  it('environmentFromEnv(FIRN_TEE=nitro, FIRN_NSM_HELPER): it names itself as a verifier does and needs a key broker', async () => {
    const pki = await makeSyntheticNitroPki();
    const doc = await makeSyntheticNitroDocument(pki, { userData: new Uint8Array(64) });
    const t = tree(attestationResponse(doc));
    const env = await environmentFromEnv(
      { FIRN_TEE: 'nitro', FIRN_NSM_HELPER: JSON.stringify(t.helper) },
      new Uint8Array(32),
      { fsRoot: t.root },
    );
    const facts = await nitroVerifier.verify(nitroVerifier.parse(doc), {
      now: Date.parse('2025-01-01T00:00:20Z') / 1000,
      roots: [pki.rootDer],
    });
    expect(bytesToHex(measurementDigest('nitro', env.measurementRegisters))).toBe(
      bytesToHex(facts.measurement),
    );
    expect(bytesToHex(env.platformId)).toBe(bytesToHex(facts.platformId));
    // No hardware sealing key: without a key broker pinned in its image the enclave refuses to start.
    await expect(createEnclaveProgram(env).handle('init', {})).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
    });
  });

  it('environmentFromEnv(FIRN_TEE=nitro) without a helper argv names FIRN_NSM_HELPER', async () => {
    for (const v of [undefined, 'not json', '[]', '[1]']) {
      await expect(
        environmentFromEnv(
          { FIRN_TEE: 'nitro', ...(v === undefined ? {} : { FIRN_NSM_HELPER: v }) },
          new Uint8Array(32),
        ),
      ).rejects.toMatchObject({
        code: 'E_INVALID_INPUT',
        message: expect.stringContaining('FIRN_NSM_HELPER'),
      });
    }
  });

  it('outside a Nitro enclave (no /dev/nsm) fails with E_ENCLAVE_UNAVAILABLE before running the helper', async () => {
    const root = mkdtempSync(join(tmpdir(), 'firn-none-'));
    const p = new NitroNsmEvidenceProvider({ root, helper: ['/nonexistent-helper'] });
    await expect(p.quote(rd)).rejects.toMatchObject({ code: 'E_ENCLAVE_UNAVAILABLE' });
  });

  it('refuses report data that is not 64 bytes', async () => {
    const t = tree(attestationResponse(new Uint8Array(1)));
    const p = new NitroNsmEvidenceProvider({ root: t.root, helper: t.helper });
    await expect(p.quote(new Uint8Array(32))).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
  });

  it('an NSM error, a failing or missing helper, junk or oversized output: typed errors', async () => {
    const cases: Array<[Uint8Array, string, { exit?: number }?]> = [
      [encode(new Map([['Error', 'InvalidArgument']])), 'E_ENCLAVE_UNAVAILABLE'],
      [Buffer.from('not cbor at all \xff\xff'), 'E_ENCLAVE_PROTOCOL'],
      [encode(new Map([['Attestation', new Map([['document', 'text']])]])), 'E_ENCLAVE_PROTOCOL'],
      [encode(new Map([['DescribePCR', new Map()]])), 'E_ENCLAVE_PROTOCOL'],
      // A document-shaped answer that is not an attestation document.
      [attestationResponse(new Uint8Array(100).fill(0x41)), 'E_ENCLAVE_PROTOCOL'],
      [new Uint8Array(MAX_NSM_RESPONSE_BYTES + 10), 'E_ENCLAVE_PROTOCOL'],
      [attestationResponse(new Uint8Array(10)), 'E_ENCLAVE_UNAVAILABLE', { exit: 1 }],
    ];
    for (const [response, code, o] of cases) {
      const t = tree(response, o);
      const p = new NitroNsmEvidenceProvider({ root: t.root, helper: t.helper });
      await expect(p.quote(rd), code).rejects.toMatchObject({ code });
    }
    const t = tree(new Uint8Array(0));
    const missing = new NitroNsmEvidenceProvider({ root: t.root, helper: [join(t.root, 'no-such-helper')] });
    await expect(missing.quote(rd)).rejects.toMatchObject({ code: 'E_ENCLAVE_UNAVAILABLE' });
  });

  it('a transport can stand in for the helper', async () => {
    const doc = await makeSyntheticNitroDocument(await makeSyntheticNitroPki(), { userData: rd });
    const t = tree(new Uint8Array(0));
    let seen: Uint8Array | undefined;
    const p = new NitroNsmEvidenceProvider({
      root: t.root,
      transport: {
        request: async (req) => {
          seen = req;
          return attestationResponse(doc);
        },
      },
    });
    expect(Buffer.from((await p.quote(rd)).quote).equals(Buffer.from(doc))).toBe(true);
    expect(Buffer.from(seen!).equals(Buffer.from(nsmAttestationRequest(rd)))).toBe(true);
  });

  it('has no sealing key unless one is configured', async () => {
    const t = tree(new Uint8Array(0));
    await expect(
      new NitroNsmEvidenceProvider({ root: t.root, helper: t.helper }).sealingKey(),
    ).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
    });
    const key = new Uint8Array(32).fill(9);
    const p = new NitroNsmEvidenceProvider({ root: t.root, helper: t.helper, sealingKey: async () => key });
    expect(await p.sealingKey()).toBe(key);
    const bad = new NitroNsmEvidenceProvider({
      root: t.root,
      helper: t.helper,
      sealingKey: async () => new Uint8Array(16),
    });
    await expect(bad.sealingKey()).rejects.toMatchObject({ code: 'E_SEAL' });
  });

  it('nsmAttestationDocument refuses an empty response', () => {
    expect(() => nsmAttestationDocument(new Uint8Array(0))).toThrow(
      expect.objectContaining({ code: 'E_ENCLAVE_PROTOCOL' }),
    );
  });
});
