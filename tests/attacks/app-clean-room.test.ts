import { runWorkload } from '@firn/app/testing';
import { bytesToHex } from '@firn/core';
import { describe, expect, it } from 'vitest';
import app, { MAX_ID_LENGTH, overlapCommitment } from '../../examples/clean-room/src/index.ts';

// Attacks on the clean-room example's promise: the parties learn the overlap size and nothing
// else. A party probing the other's list with one or a few IDs, lowering the guard through params,
// or reading IDs out of the result or the error message must fail; the public ledger commitment
// must not reveal the overlap without the salt.
const enc = (ids: string[]) => new TextEncoder().encode(`${ids.join('\n')}\n`);
const ids = (p: string, n: number, from = 0) => Array.from({ length: n }, (_, i) => `${p}${from + i}`);
const SECRET = 'alice.secret@example.com';

describe('clean-room example under attack', () => {
  it('refuses a membership probe (fewer than minIds distinct IDs, duplicates do not count)', async () => {
    const probe = enc(Array.from({ length: 50 }, () => SECRET));
    await expect(
      runWorkload(app, 'overlap', { inputs: { left: enc([SECRET, ...ids('x', 30)]), right: probe } }),
    ).rejects.toMatchObject({ code: 'E_INPUT_INVALID' });
  });

  it('refuses a params guard below 2', async () => {
    for (const minIds of [1, 0, -5, 2.5, '1'])
      await expect(
        runWorkload(app, 'overlap', {
          params: { minIds },
          inputs: { left: enc(ids('a', 20)), right: enc([SECRET]) },
        }),
      ).rejects.toMatchObject({ code: 'E_INPUT_INVALID' });
  });

  it('returns the overlap size and nothing else: no ID, no list size, in the result or the events', async () => {
    const r = await runWorkload(app, 'overlap', {
      inputs: {
        left: enc([SECRET, ...ids('c', 25)]),
        right: enc([SECRET.toUpperCase(), ...ids('c', 5, 20), ...ids('z', 40)]),
      },
    });
    const text = new TextDecoder().decode(r.outputs[0]!.bytes);
    expect(JSON.parse(text).overlap).toBe(6);
    expect(Object.keys(JSON.parse(text)).sort()).toEqual(['commitment', 'overlap', 'salt']);
    const everything = text + JSON.stringify(r.events) + JSON.stringify(r.records);
    expect(everything.toLowerCase()).not.toContain('secret');
    expect(everything).not.toContain('"26"');
    expect(r.outputs.length).toBe(1);
  });

  it('never quotes an ID in an error message', async () => {
    const long = `${SECRET}${'x'.repeat(MAX_ID_LENGTH)}`;
    const e = (await runWorkload(app, 'overlap', {
      inputs: { left: enc([long, ...ids('a', 20)]), right: enc(ids('b', 20)) },
    }).catch((x: unknown) => x)) as Error & { code: string };
    expect(e.code).toBe('E_INPUT_INVALID');
    expect(e.message).not.toContain('secret');
  });

  it('the signed commitment is salted: equal overlaps give different public digests', async () => {
    const run = () =>
      runWorkload(app, 'overlap', { inputs: { left: enc(ids('a', 20)), right: enc(ids('a', 20, 10)) } });
    const [a, b] = [await run(), await run()];
    expect(a.records[0]!.digest).not.toBe(b.records[0]!.digest);
    // Without the salt, the overlap cannot be found by hashing candidates: the unsalted guess differs.
    expect(a.records[0]!.digest).not.toBe(bytesToHex(overlapCommitment(10, new Uint8Array(32))));
    const salt = JSON.parse(new TextDecoder().decode(a.outputs[0]!.bytes)).salt as string;
    expect(a.records[0]!.digest).toBe(bytesToHex(overlapCommitment(10, Buffer.from(salt.slice(2), 'hex'))));
  });
});
