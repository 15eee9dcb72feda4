import { describe, expect, it } from 'vitest';
import cleanRoom from '../../examples/clean-room/src/index.ts';
import certificate from '../../examples/dataset-certificate/src/index.ts';
import { runWorkload } from '../../packages/app/src/testing.ts';

// The fields a shipped example chooses that the host (and mostly the chain) sees in clear:
// workUnits, each output's role, content type and sealed size (docs/decisions/1769). An observer
// who knows everything public about two jobs (their inputs' byte sizes) must not tell them apart
// by these fields when they differ only in a secret.
const enc = (lines: string[]) => new TextEncoder().encode(`${lines.join('\n')}\n`);
const ids = (p: string, n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => `${p}${String(from + i).padStart(4, '0')}`);
const publicView = (r: {
  workUnits: bigint;
  outputs: { role: string; contentType: string; bytes: Uint8Array }[];
}) => ({
  workUnits: r.workUnits,
  outputs: r.outputs.map((o) => ({ role: o.role, contentType: o.contentType, size: o.bytes.length })),
});

describe('shipped examples: public fields carry no plaintext', () => {
  it('clean-room: the result size does not tell an overlap of 3 from one of 30', async () => {
    const alice = enc(ids('cust-', 40));
    // Bob's two lists: equal bytes, 40 IDs each, sharing 3 or 30 IDs with Alice.
    const bob3 = enc([...ids('cust-', 3), ...ids('othr-', 37, 100)]);
    const bob30 = enc([...ids('cust-', 30), ...ids('othr-', 10, 100)]);
    expect(bob3.length).toBe(bob30.length);
    const a = await runWorkload(cleanRoom, 'overlap', { inputs: { left: alice, right: bob3 } });
    const b = await runWorkload(cleanRoom, 'overlap', { inputs: { left: alice, right: bob30 } });
    expect(JSON.parse(new TextDecoder().decode(a.outputs[0]!.bytes)).overlap).toBe(3);
    expect(JSON.parse(new TextDecoder().decode(b.outputs[0]!.bytes)).overlap).toBe(30);
    expect(publicView(a), 'the public fields give the overlap away').toEqual(publicView(b));
  });

  it('dataset-certificate: workUnits does not give the row count of an equal-size dataset', async () => {
    // Same bytes, 2 rows or 8 rows.
    const two = new TextEncoder().encode('name,city\nalexandra-long-name,amsterdam-zuid-east\nbo,x\n');
    const eight = new TextEncoder().encode(
      'name,city\na,b\nc,d\ne,f\ng,h\ni,j\nk,l\nm,n\nopqrstuvwxyz12,3\n',
    );
    expect(two.length).toBe(eight.length);
    const a = await runWorkload(certificate, 'certify', { inputs: { data: two } });
    const b = await runWorkload(certificate, 'certify', { inputs: { data: eight } });
    expect(a.workUnits, 'the on-chain workUnits gives the row count').toBe(b.workUnits);
  });
});
