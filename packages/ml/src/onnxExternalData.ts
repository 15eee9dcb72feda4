import { FirnError } from '@firn/core';

/**
 * Refuse ONNX models whose tensors keep their data outside the model bytes
 * (TensorProto.data_location = EXTERNAL, or any TensorProto.external_data entry). onnxruntime
 * would read such data from a file path relative to the process's working directory: inside the
 * enclave that is a host file, which the input commitment does not cover, so a host could swap a
 * model's weights. This walks the protobuf wire format of onnx.proto (github.com/onnx/onnx,
 * onnx/onnx.proto) without decoding values, visiting every place a TensorProto can sit:
 *
 *   ModelProto.graph (7), .training_info (20: initialization 1, algorithm 2), .functions (25)
 *   GraphProto.node (1), .initializer (5), .sparse_initializer (15)
 *   NodeProto.attribute (5); FunctionProto.node (7), .attribute_proto (11)
 *   AttributeProto.t (5), .g (6), .tensors (10), .graphs (11), .sparse_tensor (22), .sparse_tensors (23)
 *   SparseTensorProto.values (1), .indices (2)
 *   TensorProto.external_data (13), .data_location (14; EXTERNAL = 1)
 *
 * It proves only that no tensor asks for external data; it does not validate the model otherwise
 * (onnxruntime does). Malformed wire data, nesting deeper than MAX_ONNX_NESTING or more than
 * MAX_ONNX_MESSAGES messages fail with E_MODEL_INVALID.
 */

export const MAX_ONNX_NESTING = 64;
export const MAX_ONNX_MESSAGES = 5_000_000;

type Kind = 'model' | 'graph' | 'node' | 'function' | 'attribute' | 'tensor' | 'sparse' | 'training';

/** Which fields of each message hold which submessages. */
const CHILDREN: Record<Kind, Partial<Record<number, Kind>>> = {
  model: { 7: 'graph', 20: 'training', 25: 'function' },
  training: { 1: 'graph', 2: 'graph' },
  graph: { 1: 'node', 5: 'tensor', 15: 'sparse' },
  node: { 5: 'attribute' },
  function: { 7: 'node', 11: 'attribute' },
  attribute: { 5: 'tensor', 6: 'graph', 10: 'tensor', 11: 'graph', 22: 'sparse', 23: 'sparse' },
  sparse: { 1: 'tensor', 2: 'tensor' },
  tensor: {},
};

const invalid = (message: string) => new FirnError('E_MODEL_INVALID', `ONNX model: ${message}`);
const EXTERNAL_MESSAGE =
  'a tensor keeps its data in an external file (TensorProto.data_location = EXTERNAL); the enclave reads no host file, so embed the weights in the model (e.g. onnx.save_model(m, path, save_as_external_data=False))';

function readVarint(b: Uint8Array, pos: number, end: number): [number, number] {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw invalid('truncated varint');
    const byte = b[pos++]!;
    // Values past 2^53 lose precision; only lengths and small enums are used, so that is enough.
    value += (byte & 0x7f) * mul;
    mul *= 128;
    if ((byte & 0x80) === 0) return [value, pos];
  }
  throw invalid('varint longer than 10 bytes');
}

/**
 * Throw E_MODEL_INVALID if any tensor of the model (initializers, constant attributes, subgraphs,
 * functions, sparse tensors, training graphs) refers to external data.
 */
export function assertNoExternalData(model: Uint8Array): void {
  let messages = 0;
  const walk = (start: number, end: number, kind: Kind, depth: number): void => {
    if (depth > MAX_ONNX_NESTING) throw invalid(`messages nest deeper than ${MAX_ONNX_NESTING} levels`);
    if (++messages > MAX_ONNX_MESSAGES) throw invalid(`more than ${MAX_ONNX_MESSAGES} messages`);
    const children = CHILDREN[kind];
    let pos = start;
    while (pos < end) {
      let key: number;
      [key, pos] = readVarint(model, pos, end);
      // protobuf reads a key as a uint32 and drops higher bits: such a key would be another field
      // to onnxruntime than to this walk (e.g. 13 + 2^29 is external_data there).
      if (key > 0xffffffff) throw invalid('a field key over 32 bits');
      const field = Math.floor(key / 8);
      const wire = key % 8;
      if (field === 0) throw invalid('field number 0');
      switch (wire) {
        case 0: {
          let v: number;
          [v, pos] = readVarint(model, pos, end);
          // Anything but DEFAULT (0): protobuf truncates an enum to int32, so 2^32 + 1 is EXTERNAL.
          if (kind === 'tensor' && field === 14 && v !== 0) throw invalid(EXTERNAL_MESSAGE);
          break;
        }
        case 1:
          pos += 8;
          break;
        case 5:
          pos += 4;
          break;
        case 2: {
          let len: number;
          [len, pos] = readVarint(model, pos, end);
          if (len > end - pos) throw invalid('a length-delimited field runs past its message');
          if (kind === 'tensor' && field === 13) throw invalid(EXTERNAL_MESSAGE);
          const child = children[field];
          if (child !== undefined) walk(pos, pos + len, child, depth + 1);
          pos += len;
          break;
        }
        default:
          throw invalid(`unsupported protobuf wire type ${wire}`);
      }
      if (pos > end) throw invalid('a field runs past its message');
    }
  };
  walk(0, model.length, 'model', 0);
}
