import { encodeOnnxModel } from '@firn/ml';

/**
 * An ONNX model whose every request never ends: y = x (float32 [N, 3]) after a Loop of 10^15
 * Identity iterations. The hanging peer the session tests share: a request to it is taken and
 * never answered, so a child running it spins a CPU core until it is killed.
 */
export function loopForeverModel(): Uint8Array {
  return encodeOnnxModel({
    name: 'spin',
    nodes: [
      {
        opType: 'Cast',
        inputs: ['one'],
        outputs: ['cond'],
        attributes: [{ name: 'to', kind: 'int', value: 9 }],
      },
      {
        opType: 'Loop',
        inputs: ['M', 'cond', 'x'],
        outputs: ['y'],
        attributes: [
          {
            name: 'body',
            kind: 'graph',
            value: {
              name: 'body',
              nodes: [
                { opType: 'Identity', inputs: ['c_in'], outputs: ['c_out'] },
                { opType: 'Identity', inputs: ['v_in'], outputs: ['v_out'] },
              ],
              initializers: [],
              inputs: [
                { name: 'i', elemType: 'int64', shape: [] },
                { name: 'c_in', elemType: 'bool', shape: [] },
                { name: 'v_in', elemType: 'float', shape: ['N', 3] },
              ],
              outputs: [
                { name: 'c_out', elemType: 'bool', shape: [] },
                { name: 'v_out', elemType: 'float', shape: ['N', 3] },
              ],
            },
          },
        ],
      },
    ],
    initializers: [
      { name: 'M', dims: [], dtype: 'int64', data: BigInt64Array.of(10n ** 15n) },
      { name: 'one', dims: [], dtype: 'float', data: Float32Array.of(1) },
    ],
    inputs: [{ name: 'x', elemType: 'float', shape: ['N', 3] }],
    outputs: [{ name: 'y', elemType: 'float', shape: ['N', 3] }],
  });
}
