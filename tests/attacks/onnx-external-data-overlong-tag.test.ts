import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOnnxModel } from '../../packages/ml/src/inference.ts';
import { assertNoExternalData } from '../../packages/ml/src/onnxExternalData.ts';
import { encodeOnnxModel, type OnnxTensor } from '../../packages/ml/src/onnxProto.ts';

// The attack: a model owner (with a host that hands out the weights) hides ONNX external data
// from the enclave's check. `assertNoExternalData` walks the protobuf wire format and reads each
// field key as an unbounded varint, so a key written in 5 bytes with a bit above 2^32 set
// (`0xea 0x80 0x80 0x80 0x10` = 106 + 2^32) is to it an unknown field number (536870925) and is
// skipped. protobuf's C++ parser (onnxruntime's) reads a tag as a uint32 and drops those bits:
// to it the same bytes are field 13 (`external_data`), and `0xf0 .. 0x10` field 14
// (`data_location` = EXTERNAL). onnxruntime then treats the initializer as external data in a file
// of the process's working directory (a host file outside the input commitment): it checks the
// path and that the file exists (an error that differs by the file's existence, sealed to the
// requester), and onnxruntime-node 1.30 then happens to fail the load in its optimizer (a model
// loaded from bytes has no model path). So today only onnxruntime's own later refusal stands
// between a host file and the model's weights; the check that promises "no tensor asks for
// external data" must see the same fields onnxruntime sees, whatever onnxruntime version runs.

const file = `.firn-overlong-${process.pid}.bin`;
writeFileSync(join(process.cwd(), file), Buffer.from(Float32Array.from([10, 20, 30, 40, 50, 60]).buffer));
afterAll(() => rmSync(join(process.cwd(), file), { force: true }));

function readVarint(b: Uint8Array, p: number): [bigint, number] {
  let v = 0n;
  let s = 0n;
  for (;;) {
    const x = b[p++]!;
    v |= BigInt(x & 0x7f) << s;
    s += 7n;
    if ((x & 0x80) === 0) return [v, p];
  }
}
function varint(v: bigint): number[] {
  const o: number[] = [];
  do {
    let x = Number(v & 0x7fn);
    v >>= 7n;
    if (v) x |= 0x80;
    o.push(x);
  } while (v);
  return o;
}
type Field = { key: bigint; raw: Uint8Array };
function fields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let p = 0;
  while (p < b.length) {
    const [key, q] = readVarint(b, p);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [, r] = readVarint(b, q);
      out.push({ key, raw: b.subarray(q, r) });
      p = r;
    } else if (wire === 2) {
      const [len, r] = readVarint(b, q);
      out.push({ key, raw: b.subarray(r, r + Number(len)) });
      p = r + Number(len);
    } else throw new Error(`wire type ${wire} not used here`);
  }
  return out;
}
/** Re-encode; keys in `overlong` are written in 5 bytes with bit 32 set (dropped by protobuf). */
function encode(fs: Field[], overlong: Set<bigint> = new Set()): Uint8Array {
  const o: number[] = [];
  for (const f of fs) {
    if (overlong.has(f.key)) o.push(Number(f.key) | 0x80, 0x80, 0x80, 0x80, 0x10);
    else o.push(...varint(f.key));
    if ((f.key & 7n) === 2n) o.push(...varint(BigInt(f.raw.length)));
    o.push(...f.raw);
  }
  return Uint8Array.from(o);
}
const GRAPH = 7n * 8n + 2n;
const INITIALIZER = 5n * 8n + 2n;
const EXTERNAL_DATA = 13n * 8n + 2n;
const DATA_LOCATION = 14n * 8n;

function hiddenExternalModel(): Uint8Array {
  const W: OnnxTensor = {
    name: 'W',
    dims: [3, 2],
    dtype: 'float',
    data: new Float32Array(6),
    externalData: { location: file },
  };
  const bytes = encodeOnnxModel({
    name: 'g',
    nodes: [{ opType: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] }],
    initializers: [W],
    inputs: [{ name: 'x', elemType: 'float', shape: ['N', 3] }],
    outputs: [{ name: 'y', elemType: 'float', shape: ['N', 2] }],
  });
  const hide = (t: Uint8Array) => encode(fields(t), new Set([EXTERNAL_DATA, DATA_LOCATION]));
  return encode(
    fields(bytes).map((f) =>
      f.key !== GRAPH
        ? f
        : {
            ...f,
            raw: encode(fields(f.raw).map((g) => (g.key !== INITIALIZER ? g : { ...g, raw: hide(g.raw) }))),
          },
    ),
  );
}

describe('ONNX external data behind an over-long field key', () => {
  it('is refused by the check and by loadOnnxModel: onnxruntime never reads the host file', async () => {
    const evil = hiddenExternalModel();
    expect(Buffer.from(evil).includes(file)).toBe(true);
    let walker = 'accepted';
    try {
      assertNoExternalData(evil);
    } catch (e) {
      walker = (e as { code?: string }).code ?? String(e);
    }
    let ran: number[] | undefined;
    const loaded = await loadOnnxModel(evil).then(
      async (m) => {
        const out = await m.run({ x: { type: 'float32', dims: [1, 3], data: Float32Array.from([1, 1, 1]) } });
        ran = Array.from(out.y!.data as Float32Array);
        await m.release();
        return 'ran';
      },
      (e: { code?: string }) => e.code,
    );
    // Without the fix the check accepts it and the model runs with the host file's weights: [90, 120].
    expect({ walker, loaded, ran }).toEqual({
      walker: 'E_MODEL_INVALID',
      loaded: 'E_MODEL_INVALID',
      ran: undefined,
    });
  });
});
