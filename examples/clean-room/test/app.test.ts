import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runWorkload } from '@firn/app/testing';
import app, { overlapCommitment } from '../src/index.ts';

const list = (ids: string[]) => new TextEncoder().encode(`${ids.join('\n')}\n`);
const range = (p: string, a: number, b: number) => Array.from({ length: b - a }, (_, i) => `${p}${a + i}`);

test('the result is the overlap size, with a salted commitment the enclave signed', async () => {
  const r = await runWorkload(app, 'overlap', {
    inputs: { left: list(range('id-', 0, 20)), right: list([...range('ID-', 15, 30), ' id-3 ']) },
  });
  const result = JSON.parse(new TextDecoder().decode(r.outputs[0]!.bytes));
  assert.equal(result.overlap, 6);
  assert.deepEqual(Object.keys(result).sort(), ['commitment', 'overlap', 'salt']);
  assert.equal(r.records.length, 1);
  const salt = Uint8Array.from(Buffer.from(result.salt.slice(2), 'hex'));
  assert.equal(r.records[0]!.digest, `0x${Buffer.from(overlapCommitment(6, salt)).toString('hex')}`);
});

test('a one-ID membership probe is refused with E_INPUT_INVALID', async () => {
  await assert.rejects(
    runWorkload(app, 'overlap', {
      inputs: { left: list(['victim@example.com']), right: list(range('x', 0, 50)) },
    }),
    { code: 'E_INPUT_INVALID' },
  );
});

test('a job without the right list is refused with E_INPUT_INVALID', async () => {
  await assert.rejects(runWorkload(app, 'overlap', { inputs: { left: list(range('a', 0, 20)) } }), {
    code: 'E_INPUT_INVALID',
  });
});
