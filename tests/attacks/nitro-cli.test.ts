import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeSyntheticNitroPki } from '../../packages/attestation/test/nitro/syntheticNitro.ts';
import {
  NITRO_VECTOR_DIR,
  NITRO_VECTORS,
  nitroVectorBytes,
} from '../../packages/attestation/test/nitro/nitroVectors.ts';
import { runAttestVerifyNitro } from '../../packages/cli/src/commands/attestVerifyNitro.ts';

// `firn attest verify --tee nitro --evidence FILE --at UNIX --json` as the issue checks it: real
// documents verify at their pinned times and are refused one hour after the leaf expires, with a
// flipped byte, or against another root. One spawn of the real binary; the rest in process.
const dir = mkdtempSync(join(tmpdir(), 'firn-nitro-cli-'));
const bin = join(__dirname, '../../packages/cli/bin/firn.mjs');
const file = (name: string, data: Uint8Array | string) => {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
};
const base = NITRO_VECTORS.base;
const baseFile = join(NITRO_VECTOR_DIR, base.file);

async function run(o: Parameters<typeof runAttestVerifyNitro>[0]) {
  const r = await runAttestVerifyNitro(o);
  return {
    ...r,
    json: JSON.parse(r.output) as Record<string, unknown> & { error?: { code: string; message: string } },
  };
}

describe('firn attest verify --tee nitro', () => {
  it('the real binary verifies the real production document at its pinned time (exit 0, JSON facts)', () => {
    const r = spawnSync(
      process.execPath,
      [
        bin,
        'attest',
        'verify',
        '--tee',
        'nitro',
        '--evidence',
        baseFile,
        '--at',
        String(base.verifyAt),
        '--json',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({
      teeType: 'nitro',
      verified: true,
      accepted: true,
      debug: false,
      moduleId: base.moduleId,
    });
    expect(j.pcr0).toMatch(/^ec74bfbe/);
  });

  it('accepts the document as hex, base64 or an evidence bundle too', async () => {
    const b = Buffer.from(nitroVectorBytes(base));
    for (const f of [
      file('doc.hex', b.toString('hex')),
      file('doc.b64', `${b.toString('base64')}\n`),
      file('bundle.json', JSON.stringify({ version: 1, teeType: 'nitro', quote: `0x${b.toString('hex')}` })),
    ])
      expect((await run({ evidence: f, at: base.verifyAt })).exitCode, f).toBe(0);
  });

  it('refuses every real document one hour after its leaf expires (E_EVIDENCE_EXPIRED)', async () => {
    for (const v of Object.values(NITRO_VECTORS)) {
      const r = await run({
        evidence: join(NITRO_VECTOR_DIR, v.file),
        at: v.leafNotAfter + 3600,
        allowDebug: true,
      });
      expect(r.exitCode).toBe(1);
      expect(r.json.error?.code).toBe('E_EVIDENCE_EXPIRED');
      expect(r.json.verified).toBe(false);
    }
  });

  it('refuses a flipped byte anywhere (sampled) with a typed error', async () => {
    const b = nitroVectorBytes(base);
    for (let k = 0; k < 24; k++) {
      const at = Math.floor((k * b.length) / 24);
      const bad = new Uint8Array(b);
      bad[at]! ^= 0x01;
      const r = await run({ evidence: file(`flip-${at}.cbor`, bad), at: base.verifyAt });
      expect(r.exitCode, `offset ${at}`).toBe(1);
      expect(r.json.error?.code, `offset ${at}`).toMatch(/^E_(EVIDENCE|TOO_LARGE|INVALID_INPUT)/);
    }
  });

  it('refuses the real documents against another root (E_EVIDENCE_CHAIN)', async () => {
    const other = file('other-root.der', (await makeSyntheticNitroPki()).rootDer);
    for (const v of Object.values(NITRO_VECTORS)) {
      const r = await run({
        evidence: join(NITRO_VECTOR_DIR, v.file),
        at: v.verifyAt,
        root: other,
        allowDebug: true,
      });
      expect(r.json.error?.code).toBe('E_EVIDENCE_CHAIN');
    }
  });

  it('a real debug document: verified, refused by default with the reason, accepted with --allow-debug', async () => {
    const v = NITRO_VECTORS.eternis0917;
    const f = join(NITRO_VECTOR_DIR, v.file);
    const no = await run({ evidence: f, at: v.verifyAt });
    expect(no.exitCode).toBe(1);
    expect(no.json).toMatchObject({ verified: true, accepted: false, debug: true });
    expect(no.json.error?.message).toContain('--allow-debug');
    const yes = await run({ evidence: f, at: v.verifyAt, allowDebug: true });
    expect(yes.exitCode).toBe(0);
    expect(yes.json).toMatchObject({ verified: true, accepted: true, debug: true });
  });

  it('a policy file with a nitro section sets the freshness; --max-age without one', async () => {
    const policy = file(
      'policy.json',
      JSON.stringify({ name: 'p', acceptedTcbStatuses: ['UpToDate'], nitro: { maxDocumentAgeSeconds: 60 } }),
    );
    const stale = await run({ evidence: baseFile, at: base.verifyAt, policy });
    expect(stale.json.error?.code).toBe('E_EVIDENCE_EXPIRED');
    expect(stale.json.verified).toBe(true);
    expect((await run({ evidence: baseFile, at: base.verifyAt, maxAge: 60 })).exitCode).toBe(1);
    expect((await run({ evidence: baseFile, at: base.verifyAt, maxAge: 7200 })).exitCode).toBe(0);
    const bad = file('bad-policy.json', JSON.stringify({ nitro: { maxDocumentAgeSeconds: -1 } }));
    expect((await run({ evidence: baseFile, at: base.verifyAt, policy: bad })).json.error?.code).toBe(
      'E_INVALID_INPUT',
    );
  });

  it('user mistakes name their cause: milliseconds for --at, a missing file, not a document', async () => {
    expect((await run({ evidence: baseFile, at: base.timestampMs })).json.error?.message).toContain(
      'milliseconds',
    );
    expect((await run({ evidence: join(dir, 'nope.cbor'), at: base.verifyAt })).json.error?.code).toBe(
      'E_NOT_FOUND',
    );
    const txt = await run({ evidence: file('notes.txt', 'hello, world!'), at: base.verifyAt });
    expect(txt.json.error?.code).toBe('E_INVALID_INPUT');
  });
});
