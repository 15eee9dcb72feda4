import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesToHex, type FirnError, type Hex } from '@firn/core';
import { hpkeOpen, hpkeSeal, kemPublicKeyOf } from '@firn/crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { findJobRecord, recordJob } from './jobJournal.ts';
import { deriveResultKem, newResultKem, newResultKemSalt, recoverResultKem, wipe } from './resultKem.ts';

// Decision 1630: without --kem-key the result key is derived from the requester key and a per-job
// salt the journal keeps, so an interrupted `firn infer|train|run` leaves a result its requester
// can still open. The journal must never hold the secret.
const KEY_A = `0x${'11'.repeat(32)}` as Hex; // a made-up test key
const KEY_B = `0x${'22'.repeat(32)}` as Hex; // a made-up test key
const JOB = `0x${'ab'.repeat(32)}` as Hex;
const home = process.env['FIRN_HOME'];
afterEach(() => {
  if (home === undefined) delete process.env['FIRN_HOME'];
  else process.env['FIRN_HOME'] = home;
});

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as FirnError).code;
  }
  return undefined;
}

describe('deriveResultKem', () => {
  it('is deterministic per (requester key, salt), and differs per salt and per key', () => {
    const salt = newResultKemSalt();
    const a1 = deriveResultKem(KEY_A, salt);
    const a2 = deriveResultKem(KEY_A, salt.slice());
    expect(bytesToHex(a1.privateKey)).toBe(bytesToHex(a2.privateKey));
    expect(bytesToHex(a1.publicKey)).toBe(bytesToHex(a2.publicKey));
    const other = deriveResultKem(KEY_A, newResultKemSalt());
    expect(bytesToHex(other.publicKey)).not.toBe(bytesToHex(a1.publicKey));
    expect(bytesToHex(other.privateKey)).not.toBe(bytesToHex(a1.privateKey));
    const b = deriveResultKem(KEY_B, salt);
    expect(bytesToHex(b.publicKey)).not.toBe(bytesToHex(a1.publicKey));
  });

  it('is HKDF-SHA256(ikm = key, salt, info = firn/cli/result-kem/v1) clamped, with its X25519 public key', async () => {
    const salt = new Uint8Array(32).fill(7);
    const kem = deriveResultKem(KEY_A, salt);
    const { hkdfSync } = await import('node:crypto');
    const raw = new Uint8Array(
      hkdfSync('sha256', Buffer.from('11'.repeat(32), 'hex'), salt, 'firn/cli/result-kem/v1', 32), // KEY_A: a made-up test key
    );
    raw[0]! &= 248;
    raw[31]! = (raw[31]! & 127) | 64;
    expect(bytesToHex(kem.privateKey)).toBe(bytesToHex(raw));
    expect(bytesToHex(kem.publicKey)).toBe(bytesToHex(kemPublicKeyOf(raw)));
  });

  it('opens what was sealed to the key of an earlier derivation (the interrupted run), and no other salt does', async () => {
    const { kem, record } = newResultKem(KEY_A);
    const sealed = await hpkeSeal(kem.publicKey, new TextEncoder().encode('the result'));
    wipe(kem);
    expect(kem.privateKey.every((x) => x === 0)).toBe(true);
    const again = recoverResultKem(KEY_A, record, JOB, '--key-file');
    expect(new TextDecoder().decode(await hpkeOpen(again.privateKey, sealed.enc, sealed.ciphertext))).toBe(
      'the result',
    );
    const stranger = deriveResultKem(KEY_A, newResultKemSalt());
    await expect(hpkeOpen(stranger.privateKey, sealed.enc, sealed.ciphertext)).rejects.toMatchObject({
      code: 'E_DECRYPT',
    });
  });

  it('refuses another requester key for a journalled job (E_INVALID_INPUT naming --key-file), a short salt, a short key', () => {
    const { record } = newResultKem(KEY_A);
    let msg = '';
    try {
      recoverResultKem(KEY_B, record, JOB, '--key-file');
    } catch (e) {
      msg = (e as FirnError).message;
      expect((e as FirnError).code).toBe('E_INVALID_INPUT');
    }
    expect(msg).toContain('--key-file');
    expect(msg).not.toContain(KEY_B.slice(2));
    expect(code(() => deriveResultKem(KEY_A, new Uint8Array(16)))).toBe('E_INVALID_INPUT');
    expect(code(() => deriveResultKem('0x1234' as Hex, newResultKemSalt()))).toBe('E_INVALID_INPUT');
    expect(
      code(() => recoverResultKem(KEY_A, { ...record, resultKemSalt: '0xzz' as Hex }, JOB, '--key-file')),
    ).toBe('E_INVALID_INPUT');
  });
});

describe('the job journal and the result key', () => {
  it('holds the salt and public key, never the derived secret nor the requester key (hex or base64)', () => {
    process.env['FIRN_HOME'] = mkdtempSync(join(tmpdir(), 'firn-kem-journal-'));
    const { kem, record } = newResultKem(KEY_A);
    expect(
      recordJob({
        jobId: JOB,
        command: 'infer',
        options: { model: '/m.onnx', input: '/i.json', out: '/o.json', escrow: '0.01' },
        postedAt: 1,
        ...record,
      }),
    ).toBe(true);
    const text = readFileSync(join(process.env['FIRN_HOME'], 'jobs', `${JOB}.json`), 'utf8');
    const sk = Buffer.from(kem.privateKey);
    for (const secret of [sk, Buffer.from(KEY_A.slice(2), 'hex')]) {
      expect(text.toLowerCase()).not.toContain(secret.toString('hex'));
      expect(text).not.toContain(secret.toString('base64'));
      expect(text).not.toContain(secret.toString('base64url'));
    }
    const rec = findJobRecord(JOB)!;
    expect(rec.resultKemSalt).toBe(record.resultKemSalt);
    expect(rec.resultKemPublicKey).toBe(bytesToHex(kem.publicKey));
    // And what it holds is enough, with the requester key, to derive the secret again.
    expect(bytesToHex(recoverResultKem(KEY_A, record, JOB, '--key-file').privateKey)).toBe(
      bytesToHex(kem.privateKey),
    );
  });

  it('refuses an oversized journal entry (E_TOO_LARGE) and reads a missing one as none', async () => {
    process.env['FIRN_HOME'] = mkdtempSync(join(tmpdir(), 'firn-kem-journal-'));
    expect(findJobRecord(JOB)).toBeUndefined();
    const { mkdirSync, writeFileSync } = await import('node:fs');
    mkdirSync(join(process.env['FIRN_HOME'], 'jobs'), { recursive: true });
    writeFileSync(join(process.env['FIRN_HOME'], 'jobs', `${JOB}.json`), ' '.repeat(300 * 1024));
    expect(code(() => findJobRecord(JOB))).toBe('E_TOO_LARGE');
  });
});
