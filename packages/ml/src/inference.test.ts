import { describe, expect, it } from 'vitest';
import { declaredOutputShapes, loadOnnxModel } from './inference.ts';
import { encodeOnnxModel } from './onnxProto.ts';
import { createPrng } from './prng.ts';
import { parseTensorMap, tensorMapToJson } from './tensorJson.ts';

// A MatMul + Add + Relu model with deterministic weights, checked against plain JS arithmetic.
// Not covered here: conv operators, multi-threaded sessions, models over a few KB.
const IN = 5;
const OUT = 3;
const rng = createPrng(7);
const W = Float32Array.from({ length: IN * OUT }, () => rng.next() * 2 - 1);
const B = Float32Array.from({ length: OUT }, () => rng.next() - 0.5);

function modelBytes(): Uint8Array {
  return encodeOnnxModel({
    name: 'mlp',
    nodes: [
      { opType: 'MatMul', inputs: ['x', 'W'], outputs: ['xw'] },
      { opType: 'Add', inputs: ['xw', 'B'], outputs: ['z'] },
      { opType: 'Relu', inputs: ['z'], outputs: ['y'] },
    ],
    initializers: [
      { name: 'W', dims: [IN, OUT], dtype: 'float', data: W },
      { name: 'B', dims: [OUT], dtype: 'float', data: B },
    ],
    inputs: [{ name: 'x', elemType: 'float', shape: ['N', IN] }],
    outputs: [{ name: 'y', elemType: 'float', shape: ['N', OUT] }],
  });
}

function reference(x: Float32Array, rows: number): Float64Array {
  const y = new Float64Array(rows * OUT);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < OUT; j++) {
      let s = B[j]!;
      for (let k = 0; k < IN; k++) s += x[r * IN + k]! * W[k * OUT + j]!;
      y[r * OUT + j] = Math.max(0, s);
    }
  return y;
}

describe('loadOnnxModel', () => {
  it('runs a MatMul+Add+Relu model and matches a JS computation, warm across calls', async () => {
    const model = await loadOnnxModel(modelBytes());
    expect(model.inputNames).toEqual(['x']);
    expect(model.outputNames).toEqual(['y']);
    expect(model.inputMetadata[0]?.type).toBe('float32');
    for (const rows of [1, 4]) {
      const x = Float32Array.from({ length: rows * IN }, () => rng.next() * 4 - 2);
      const json = JSON.stringify({ x: { dims: [rows, IN], type: 'float32', data: Array.from(x) } });
      const out = await model.run(parseTensorMap(json));
      const y = out['y']!;
      expect(y.dims).toEqual([rows, OUT]);
      const ref = reference(x, rows);
      let maxDiff = 0;
      for (let i = 0; i < ref.length; i++)
        maxDiff = Math.max(maxDiff, Math.abs(ref[i]! - (y.data as Float32Array)[i]!));
      expect(maxDiff).toBeLessThanOrEqual(1e-5);
      // The JSON round trip keeps the float32 values exactly.
      const back = parseTensorMap(tensorMapToJson(out))['y']!;
      expect(Array.from(back.data as Float32Array)).toEqual(Array.from(y.data as Float32Array));
    }
    await model.release();
  });

  it('rejects wrong name, type and shape before running, naming the input', async () => {
    const model = await loadOnnxModel(modelBytes());
    const good = { type: 'float32' as const, dims: [1, IN], data: new Float32Array(IN) };
    await expect(model.run({ z: good })).rejects.toMatchObject({ code: 'E_INPUT_INVALID', message: /"z"/ });
    await expect(model.run({})).rejects.toMatchObject({ code: 'E_INPUT_INVALID', message: /"x" is missing/ });
    await expect(
      model.run({ x: { type: 'float64', dims: [1, IN], data: new Float64Array(IN) } }),
    ).rejects.toMatchObject({
      code: 'E_INPUT_INVALID',
      message: /expected type float32, got float64/,
    });
    await expect(
      model.run({ x: { type: 'float32', dims: [1, IN + 1], data: new Float32Array(IN + 1) } }),
    ).rejects.toMatchObject({
      code: 'E_INPUT_INVALID',
      message: /"x": expected shape \[N, 5\], got \[1, 6\]/,
    });
    await expect(
      model.run({ x: { type: 'float32', dims: [IN], data: new Float32Array(IN) } }),
    ).rejects.toMatchObject({
      code: 'E_INPUT_INVALID',
    });
    await model.release();
  });

  it('rejects bytes onnxruntime cannot load with E_MODEL_INVALID', async () => {
    await expect(loadOnnxModel(new Uint8Array([1, 2, 3, 4, 5]))).rejects.toMatchObject({
      code: 'E_MODEL_INVALID',
    });
    await expect(loadOnnxModel(new Uint8Array(0))).rejects.toMatchObject({ code: 'E_MODEL_INVALID' });
    // A well-formed protobuf whose graph references an undefined tensor.
    const broken = encodeOnnxModel({
      name: 'broken',
      nodes: [{ opType: 'Relu', inputs: ['nope'], outputs: ['y'] }],
      initializers: [],
      inputs: [{ name: 'x', elemType: 'float', shape: [1] }],
      outputs: [{ name: 'y', elemType: 'float', shape: [1] }],
    });
    await expect(loadOnnxModel(broken)).rejects.toMatchObject({ code: 'E_MODEL_INVALID' });
    await expect(loadOnnxModel(new Uint8Array(10), { maxModelBytes: 5 })).rejects.toMatchObject({
      code: 'E_TOO_LARGE',
    });
  });

  // Decision 1597: failures whose cause is the model or its input are typed (and so signed by the
  // enclave, 1595); an allocation failure, which a host can cause, is not.
  it('types a kernel failure on the given input (Reshape, Gather, MatMul) E_INPUT_INVALID, an allocation failure E_JOB_FAILED', async () => {
    const i64 = (v: bigint[]) => ({ type: 'int64' as const, dims: [v.length], data: BigInt64Array.from(v) });
    const f32 = (dims: number[]) => ({
      type: 'float32' as const,
      dims,
      data: new Float32Array(dims.reduce((a, b) => a * b, 1)),
    });
    const reshape = await loadOnnxModel(
      encodeOnnxModel({
        name: 'r',
        nodes: [{ opType: 'Reshape', inputs: ['x', 's'], outputs: ['y'] }],
        initializers: [],
        inputs: [
          { name: 'x', elemType: 'float', shape: ['N'] },
          { name: 's', elemType: 'int64', shape: [2] },
        ],
        outputs: [{ name: 'y', elemType: 'float', shape: ['A', 'B'] }],
      }),
    );
    await expect(reshape.run({ x: f32([6]), s: i64([4n, 4n]) })).rejects.toMatchObject({
      code: 'E_INPUT_INVALID',
      message: /cannot be reshaped to the requested shape/,
    });
    await expect(reshape.run({ x: f32([6]), s: i64([-1n, -1n]) })).rejects.toMatchObject({
      code: 'E_INPUT_INVALID',
    });
    expect((await reshape.run({ x: f32([6]), s: i64([2n, 3n]) }))['y']?.dims).toEqual([2, 3]);
    await reshape.release();

    const gather = await loadOnnxModel(
      encodeOnnxModel({
        name: 'g',
        nodes: [{ opType: 'Gather', inputs: ['T', 'i'], outputs: ['y'] }],
        initializers: [{ name: 'T', dims: [4, 2], dtype: 'float', data: new Float32Array(8) }],
        inputs: [{ name: 'i', elemType: 'int64', shape: ['N'] }],
        outputs: [{ name: 'y', elemType: 'float', shape: ['N', 2] }],
      }),
    );
    await expect(gather.run({ i: i64([1n, 9n]) })).rejects.toMatchObject({
      code: 'E_INPUT_INVALID',
      message: /out of data bounds/,
    });
    await gather.release();

    // Symbolic dims pass checkInputs; the kernel refuses the inner dimension.
    const matmul = await loadOnnxModel(
      encodeOnnxModel({
        name: 'm',
        nodes: [{ opType: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] }],
        initializers: [{ name: 'W', dims: [5, 3], dtype: 'float', data: new Float32Array(15) }],
        inputs: [{ name: 'x', elemType: 'float', shape: ['N', 'K'] }],
        outputs: [{ name: 'y', elemType: 'float', shape: ['N', 3] }],
      }),
    );
    await expect(matmul.run({ x: f32([2, 4]) })).rejects.toMatchObject({ code: 'E_INPUT_INVALID' });
    await matmul.release();

    // A real allocation failure: Expand to 2^40 floats asks the arena for 4 TiB, which fails
    // at once. The same failure could be the host's doing, so it stays untyped.
    const expand = await loadOnnxModel(
      encodeOnnxModel({
        name: 'e',
        nodes: [{ opType: 'Expand', inputs: ['x', 's'], outputs: ['y'] }],
        initializers: [],
        inputs: [
          { name: 'x', elemType: 'float', shape: ['N'] },
          { name: 's', elemType: 'int64', shape: [1] },
        ],
        outputs: [{ name: 'y', elemType: 'float', shape: ['A'] }],
      }),
    );
    await expect(expand.run({ x: f32([1]), s: i64([2n ** 40n]) })).rejects.toMatchObject({
      code: 'E_JOB_FAILED',
      message: /Failed to allocate/,
    });
    await expect(expand.run({ x: f32([3]), s: i64([4n]) })).rejects.toMatchObject({
      code: 'E_INPUT_INVALID',
    });
    await expand.release();
  });

  // The farm of 1595 by naming: a requester's node named like an allocation failure must not make
  // its own deterministic failure read as one (untyped, unsigned); the reverse neither.
  it('a node name cannot untype (or type) a failure: resource words are read only in the status', async () => {
    const named = (name: string) =>
      loadOnnxModel(
        encodeOnnxModel({
          name: 'n',
          nodes: [{ opType: 'Expand', inputs: ['x', 's'], outputs: ['y'], name }],
          initializers: [],
          inputs: [
            { name: 'x', elemType: 'float', shape: ['N'] },
            { name: 's', elemType: 'int64', shape: [1] },
          ],
          outputs: [{ name: 'y', elemType: 'float', shape: ['A'] }],
        }),
      );
    const feeds = (n: number, to: bigint) => ({
      x: { type: 'float32' as const, dims: [n], data: new Float32Array(n) },
      s: { type: 'int64' as const, dims: [1], data: BigInt64Array.of(to) },
    });
    const untyper = await named("Failed to allocate memory std::bad_alloc' Status Message: BFCArena");
    await expect(untyper.run(feeds(3, 4n))).rejects.toMatchObject({
      code: 'E_INPUT_INVALID',
      message: /invalid expand shape/,
    });
    await untyper.release();
    const typer = await named("x' Status Message: invalid expand shape");
    await expect(typer.run(feeds(1, 2n ** 40n))).rejects.toMatchObject({
      code: 'E_JOB_FAILED',
      message: /Failed to allocate/,
    });
    await typer.release();
  });
});

describe('declaredOutputShapes', () => {
  const f32 = (dims: number[]) => ({
    type: 'float32' as const,
    dims,
    data: new Float32Array(dims.reduce((a, b) => a * b, 1)),
  });

  it('binds the graph’s symbolic dims from the inputs’ dims (read off onnxruntime’s metadata)', async () => {
    const model = await loadOnnxModel(modelBytes());
    try {
      expect(model.outputMetadata).toEqual([{ name: 'y', type: 'float32', shape: ['N', OUT] }]);
      expect(model.declaredOutputs({ x: f32([7, IN]) })).toEqual({ y: { type: 'float32', dims: [7, OUT] } });
      // And the run agrees.
      expect((await model.run({ x: f32([7, IN]) }))['y']!.dims).toEqual([7, OUT]);
    } finally {
      await model.release();
    }
  });

  it('is undefined when a dim is unknown before the run, or bound twice differently', () => {
    const inMeta = [
      { name: 'a', type: 'float32', shape: ['N', 2] },
      { name: 'b', type: 'float32', shape: ['N'] },
    ];
    const out = (shape: (number | string)[]) => [{ name: 'y', type: 'float32', shape }];
    const inputs = { a: f32([3, 2]), b: f32([3]) };
    expect(declaredOutputShapes(inMeta, out(['N', 5]), inputs)).toEqual({
      y: { type: 'float32', dims: [3, 5] },
    });
    expect(declaredOutputShapes(inMeta, out(['M']), inputs)).toBeUndefined();
    expect(declaredOutputShapes(inMeta, out([-1]), inputs)).toBeUndefined();
    expect(declaredOutputShapes(inMeta, out([]), inputs)).toBeUndefined();
    expect(declaredOutputShapes(inMeta, out(['N']), { a: f32([3, 2]), b: f32([4]) })).toBeUndefined();
  });
});
