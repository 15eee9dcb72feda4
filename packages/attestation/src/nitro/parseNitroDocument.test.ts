import { computePlatformIdHash, isFirnError, platformFamily } from '@firn/core';
import { encode } from 'cborg';
import { describe, expect, it } from 'vitest';
import { certificateMutations } from '../../test/evidenceVerifierBehaviour.ts';
import { nitroVerifier } from './nitroVerifier.ts';
import { MAX_NITRO_DOCUMENT_BYTES, parseNitroDocument } from './parseNitroDocument.ts';
import { NITRO_VECTORS, nitroVectorBytes } from '../../test/nitro/nitroVectors.ts';
import { reportDataOf } from './verifyNitroDocument.ts';

const base = NITRO_VECTORS.base;
const real = parseNitroDocument(nitroVectorBytes(base));

/** The real payload as a Map, to re-encode with one field changed (the signature no longer holds). */
function payloadWith(change: (m: Map<string, unknown>) => void): Map<string, unknown> {
  const m = new Map<string, unknown>([
    ['module_id', real.moduleId],
    ['digest', 'SHA384'],
    ['timestamp', real.timestampMs],
    ['pcrs', new Map(real.pcrs)],
    ['certificate', real.certificate],
    ['cabundle', [...real.cabundle]],
    ['public_key', real.publicKey],
    ['user_data', null],
    ['nonce', null],
  ]);
  change(m);
  return m;
}
const docWith = (payload: unknown, header: unknown = new Map([[1, -35]])) =>
  encode([encode(header), new Map(), encode(payload), real.signature]);

async function outcome(bytes: Uint8Array, now = base.verifyAt): Promise<string> {
  try {
    await nitroVerifier.verify(nitroVerifier.parse(bytes), { now });
    return 'ACCEPTED';
  } catch (e) {
    if (!isFirnError(e)) throw new Error(`untyped error: ${(e as Error).message}`);
    return e.code;
  }
}

describe('parseNitroDocument: the CDDL, field by field', () => {
  it('the real payload re-encoded unchanged parses (so each refusal below is its one change); its signature no longer holds', async () => {
    // cborg sorts map keys when encoding, so the bytes differ from what the NSM signed.
    const doc = docWith(payloadWith(() => undefined));
    expect(parseNitroDocument(doc).moduleId).toBe(real.moduleId);
    expect(await outcome(doc)).toBe('E_EVIDENCE_SIGNATURE');
  });

  const cases: Array<[string, (m: Map<string, unknown>) => void]> = [
    ['module_id missing', (m) => m.delete('module_id')],
    ['module_id empty', (m) => m.set('module_id', '')],
    ['module_id as bytes', (m) => m.set('module_id', new Uint8Array(4))],
    ['digest SHA256', (m) => m.set('digest', 'SHA256')],
    ['timestamp zero', (m) => m.set('timestamp', 0)],
    ['timestamp negative', (m) => m.set('timestamp', -1)],
    ['timestamp a float', (m) => m.set('timestamp', 1.5)],
    ['timestamp beyond 2^53', (m) => m.set('timestamp', 2n ** 60n)],
    ['timestamp as text', (m) => m.set('timestamp', '1732983768387')],
    ['pcrs empty', (m) => m.set('pcrs', new Map())],
    ['pcrs as a list', (m) => m.set('pcrs', [new Uint8Array(48)])],
    ['PCR0 missing', (m) => (m.get('pcrs') as Map<number, Uint8Array>).delete(0)],
    ['PCR2 of 32 bytes', (m) => (m.get('pcrs') as Map<number, Uint8Array>).set(2, new Uint8Array(32))],
    ['PCR index 32', (m) => (m.get('pcrs') as Map<number, Uint8Array>).set(32, new Uint8Array(48))],
    ['PCR index as text', (m) => (m.get('pcrs') as Map<unknown, Uint8Array>).set('0', new Uint8Array(48))],
    ['33 PCRs', (m) => m.set('pcrs', new Map(Array.from({ length: 33 }, (_, i) => [i, new Uint8Array(48)])))],
    ['certificate missing', (m) => m.delete('certificate')],
    ['certificate over 1024 bytes', (m) => m.set('certificate', new Uint8Array(1025))],
    ['cabundle empty', (m) => m.set('cabundle', [])],
    [
      'cabundle of 9',
      (m) =>
        m.set(
          'cabundle',
          Array.from({ length: 9 }, () => real.cabundle[0]),
        ),
    ],
    ['cabundle entry as text', (m) => m.set('cabundle', ['root'])],
    ['public_key empty', (m) => m.set('public_key', new Uint8Array(0))],
    ['public_key over 1024 bytes', (m) => m.set('public_key', new Uint8Array(1025))],
    ['user_data over 512 bytes', (m) => m.set('user_data', new Uint8Array(513))],
    ['nonce over 512 bytes', (m) => m.set('nonce', new Uint8Array(513))],
    ['nonce as text', (m) => m.set('nonce', 'abc')],
    ['an unknown field', (m) => m.set('debug', false)],
    ['an integer key', (m) => m.set(1 as unknown as string, 1)],
  ];
  for (const [what, change] of cases)
    it(`refuses ${what} with E_EVIDENCE_MALFORMED`, () => {
      expect(() => parseNitroDocument(docWith(payloadWith(change)))).toThrow(
        expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }),
      );
    });

  it('accepts absent optional fields and a user_data of 512 bytes (then the signature decides)', async () => {
    const d = parseNitroDocument(
      docWith(
        payloadWith((m) => {
          m.delete('public_key');
          m.delete('nonce');
          m.set('user_data', new Uint8Array(512));
        }),
      ),
    );
    expect(d.publicKey).toBeNull();
    expect(d.userData).toHaveLength(512);
  });

  it('refuses COSE framing that is not a Sign1 of ES384', () => {
    const p = encode(payloadWith(() => undefined));
    const bad: Array<[string, Uint8Array]> = [
      ['three elements', encode([encode(new Map([[1, -35]])), new Map(), p])],
      ['a map', encode(new Map([[1, 2]]))],
      ['protected header as a map', encode([new Map([[1, -35]]), new Map(), p, real.signature])],
      [
        'no alg',
        docWith(
          payloadWith(() => undefined),
          new Map([[4, new Uint8Array(1)]]),
        ),
      ],
      [
        'alg as text',
        docWith(
          payloadWith(() => undefined),
          new Map([[1, 'ES384']]),
        ),
      ],
      [
        'critical parameters',
        docWith(
          payloadWith(() => undefined),
          new Map<number, unknown>([
            [1, -35],
            [2, [1]],
          ]),
        ),
      ],
      ['unprotected header a list', encode([encode(new Map([[1, -35]])), [], p, real.signature])],
      [
        'signature of 95 bytes',
        encode([encode(new Map([[1, -35]])), new Map(), p, real.signature.subarray(1)]),
      ],
      ['signature of 97 bytes', encode([encode(new Map([[1, -35]])), new Map(), p, new Uint8Array(97)])],
      [
        'payload as a map',
        encode([encode(new Map([[1, -35]])), new Map(), payloadWith(() => undefined), real.signature]),
      ],
      ['another CBOR tag', new Uint8Array([0xd8, 0x62, ...nitroVectorBytes(base)])],
    ];
    for (const [what, b] of bad)
      expect(() => parseNitroDocument(b), what).toThrow(
        expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }),
      );
  });

  it('accepts the COSE_Sign1 tag (18) in front of a real document, which still verifies', async () => {
    const tagged = new Uint8Array([0xd2, ...nitroVectorBytes(base)]);
    expect(await outcome(tagged)).toBe('ACCEPTED');
  });

  it('deep nesting inside the size cap fails typed, never with a stack overflow', () => {
    const n = MAX_NITRO_DOCUMENT_BYTES - 1;
    const deep = new Uint8Array(n + 1).fill(0x81);
    deep[n] = 0x00;
    expect(() => parseNitroDocument(deep)).toThrow(expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }));
    const indefinite = new Uint8Array(n).fill(0x9f);
    expect(() => parseNitroDocument(indefinite)).toThrow(
      expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }),
    );
  });

  it('refuses non-bytes input', () => {
    expect(() => parseNitroDocument('8444' as unknown as Uint8Array)).toThrow(
      expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }),
    );
  });
});

describe('nitro: certificate fuzzing in a real document never escapes as an untyped error', () => {
  it('structured mutations of every certificate (keys, curves, algorithms, lengths) are refused, typed', async () => {
    const certs = [real.certificate, ...real.cabundle];
    let tried = 0;
    for (const [i, der] of certs.entries())
      for (const [what, bad] of certificateMutations(der)) {
        const payload = payloadWith((m) => {
          if (i === 0) m.set('certificate', bad);
          else
            m.set(
              'cabundle',
              real.cabundle.map((c, j) => (j === i - 1 ? bad : c)),
            );
        });
        // Certificates over the CDDL's 1024 bytes are refused by parse; others by chain or signature.
        expect(await outcome(docWith(payload)), `certificate ${i}: ${what}`).not.toBe('ACCEPTED');
        tried++;
      }
    expect(tried).toBeGreaterThan(certs.length * 4);
  });

  it('a reordered, truncated or duplicated cabundle is refused, typed', async () => {
    const variants = [
      [...real.cabundle].reverse(),
      real.cabundle.slice(1),
      real.cabundle.slice(0, -1),
      [...real.cabundle, real.cabundle[real.cabundle.length - 1]!],
      [real.cabundle[0]!],
    ];
    for (const cab of variants)
      expect(await outcome(docWith(payloadWith((m) => m.set('cabundle', cab))))).toMatch(/^E_EVIDENCE_/);
  });
});

describe('nitro: report data and platform', () => {
  it('reads user_data of exactly 64 bytes, else a 64-byte nonce, else none', () => {
    const a = new Uint8Array(64).fill(1);
    const b = new Uint8Array(64).fill(2);
    expect(reportDataOf({ userData: a, nonce: b })).toEqual({ reportData: a, source: 'user_data' });
    expect(reportDataOf({ userData: new Uint8Array(32), nonce: b })).toEqual({
      reportData: b,
      source: 'nonce',
    });
    expect(reportDataOf({ userData: null, nonce: new Uint8Array(20) }).source).toBe('none');
    expect(reportDataOf({ userData: new Uint8Array(65), nonce: null }).reportData).toEqual(
      new Uint8Array(64),
    );
  });

  it('Nitro platforms are their own family: the same id bytes never collide with an Intel platform', () => {
    expect(platformFamily('nitro')).toBe('aws-nitro');
    const id = new TextEncoder().encode('i-0de38b2b6853cc9e8');
    expect(Buffer.from(computePlatformIdHash('nitro', id))).not.toEqual(
      Buffer.from(computePlatformIdHash('sgx', id)),
    );
  });
});
