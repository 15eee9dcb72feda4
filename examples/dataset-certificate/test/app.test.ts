import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { runWorkload } from '@firn/app/testing';
import app from '../src/index.ts';

const csv = new TextEncoder().encode('id,age,city\n1,34,Oslo\n2,,Bergen\n3,51,\n4,29,Oslo\n');

test('the certificate states rows, columns, empty shares and the exact SHA-256; its digest is signed', async () => {
  const r = await runWorkload(app, 'certify', { inputs: { data: csv } });
  const cert = JSON.parse(new TextDecoder().decode(r.outputs[0]!.bytes));
  assert.equal(cert.rows, 4);
  assert.deepEqual(cert.columns, ['id', 'age', 'city']);
  assert.deepEqual(cert.emptyShare, [0, 0.25, 0.25]);
  assert.equal(cert.sha256, `0x${createHash('sha256').update(csv).digest('hex')}`);
  assert.equal(r.records[0]!.topic, 'dataset-certificate');
  assert.equal(r.records[0]!.digest, `0x${createHash('sha256').update(r.outputs[0]!.bytes).digest('hex')}`);
});

test('a ragged row is E_INPUT_INVALID, and the message names the row, not its cells', async () => {
  const bad = new TextEncoder().encode('id,name\n1,secret-name,extra\n');
  await assert.rejects(
    runWorkload(app, 'certify', { inputs: { data: bad } }),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'E_INPUT_INVALID');
      assert.ok(!e.message.includes('secret-name'));
      return true;
    },
  );
});
