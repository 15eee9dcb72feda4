import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { derRead, derTime } from './der.ts';

/** derTime as it was first written (regular expressions over latin1 text). */
function reference(tag: number, content: Uint8Array): number | string {
  const s = Buffer.from(content).toString('latin1');
  const utc = tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  const gen = tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  const m = utc ?? gen;
  if (m === null) return 'unsupported';
  const y = Number(m[1]);
  const year = utc !== null ? (y >= 50 ? 1900 + y : 2000 + y) : y;
  // A real instant only: each field in range (no roll-over), a four-digit year as given.
  const [mon, day, hh, mm, ss] = [2, 3, 4, 5, 6].map((i) => Number(m[i])) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const d = new Date(Date.UTC(2000, mon - 1, day, hh, mm, ss));
  d.setUTCFullYear(year);
  if (
    mon < 1 ||
    mon > 12 ||
    day < 1 ||
    hh > 23 ||
    mm > 59 ||
    ss > 59 ||
    d.getUTCMonth() !== mon - 1 ||
    d.getUTCDate() !== day
  )
    return 'invalid';
  const ms = d.getTime();
  if (!Number.isFinite(ms)) return 'invalid';
  return ms / 1000;
}

function current(tag: number, content: Uint8Array): number | string {
  const b = Uint8Array.of(tag, content.length, ...content);
  try {
    return derTime(b, derRead(b, 0), 't');
  } catch (e) {
    if (!isFirnError(e)) throw e;
    return e.message.includes('invalid time') ? 'invalid' : 'unsupported';
  }
}

describe('derTime (byte reader) agrees with the regular-expression reader', () => {
  it('on mutated UTCTime and GeneralizedTime values', () => {
    const alphabet = [0x30, 0x31, 0x35, 0x39, 0x3a, 0x2f, 0x5a, 0x7a, 0x2b, 0x2e, 0x20, 0x00, 0xb9, 0x0a];
    let seed = 5;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const bases: [number, string][] = [
      [0x17, '250719095410Z'],
      [0x17, '491231235959Z'],
      [0x17, '500101000000Z'],
      [0x18, '20250719095410Z'],
      [0x18, '00490101000000Z'],
      [0x18, '99991231235959Z'],
    ];
    for (let k = 0; k < 6000; k++) {
      const [baseTag, text] = bases[k % bases.length]!;
      const tag = rnd(10) === 0 ? (baseTag === 0x17 ? 0x18 : 0x17) : baseTag;
      const c = [...Buffer.from(text, 'latin1')];
      for (let m = 0; m < rnd(3); m++) {
        const i = rnd(c.length + 1);
        const op = rnd(3);
        const x = alphabet[rnd(alphabet.length)]!;
        if (op === 0) c.splice(i, 0, x);
        else if (op === 1) c.splice(i, 1);
        else c[i] = x;
      }
      const content = Uint8Array.from(c.slice(0, 100));
      expect(current(tag, content), `${tag} ${JSON.stringify(Buffer.from(content).toString('latin1'))}`).toBe(
        reference(tag, content),
      );
    }
  });
});
