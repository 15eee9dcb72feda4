import { FirnError } from '@firn/core';
import protobuf from 'protobufjs';

/**
 * The subset of onnx.proto (github.com/onnx/onnx, onnx/onnx.proto) that firn writes: enough for a
 * ModelProto holding one graph of standard-domain operators with float initializers. Field numbers
 * follow the upstream file exactly, so any ONNX runtime reads the result.
 */
const ONNX_SUBSET = `
syntax = "proto3";
package onnx;
message AttributeProto {
  string name = 1;
  float f = 2;
  int64 i = 3;
  bytes s = 4;
  TensorProto t = 5;
  GraphProto g = 6;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  string doc_string = 13;
  int32 type = 20;
}
message ValueInfoProto {
  string name = 1;
  TypeProto type = 2;
  string doc_string = 3;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  repeated AttributeProto attribute = 5;
  string doc_string = 6;
  string domain = 7;
}
message StringStringEntryProto {
  string key = 1;
  string value = 2;
}
message ModelProto {
  int64 ir_version = 1;
  string producer_name = 2;
  string producer_version = 3;
  string domain = 4;
  int64 model_version = 5;
  string doc_string = 6;
  GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}
message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}
message TensorProto {
  repeated int64 dims = 1;
  int32 data_type = 2;
  repeated float float_data = 4;
  repeated int32 int32_data = 5;
  repeated int64 int64_data = 7;
  string name = 8;
  bytes raw_data = 9;
  repeated double double_data = 10;
  string doc_string = 12;
  repeated StringStringEntryProto external_data = 13;
  int32 data_location = 14;
}
message TensorShapeProto {
  message Dimension {
    int64 dim_value = 1;
    string dim_param = 2;
  }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor {
    int32 elem_type = 1;
    TensorShapeProto shape = 2;
  }
  Tensor tensor_type = 1;
}
message OperatorSetIdProto {
  string domain = 1;
  int64 version = 2;
}
`;

/** TensorProto.DataType values used here (onnx.proto). */
export const ONNX_DTYPE = { float: 1, uint8: 2, int32: 6, int64: 7, bool: 9, double: 11 } as const;
export type OnnxDtypeName = keyof typeof ONNX_DTYPE;

/** AttributeProto.AttributeType values used here. */
const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, graph: 5, floats: 6, ints: 7 } as const;

/** IR version 8 (ONNX 1.10+) and opset 13: broadly supported, and Softmax there works on one axis. */
export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 13;

export interface OnnxTensor {
  name: string;
  dims: readonly number[];
  dtype: 'float' | 'int64';
  /** float32 values or int64 values (as bigint); written as raw little-endian bytes. */
  data: Float32Array | BigInt64Array;
  /**
   * Write the tensor as external data instead (data_location = EXTERNAL, external_data entries,
   * no raw_data): the ONNX convention for weights kept in a side file. The enclave refuses such
   * models; this exists so tests can build them.
   */
  externalData?: { location: string; offset?: number; length?: number };
}

export type OnnxAttribute =
  | { name: string; kind: 'float'; value: number }
  | { name: string; kind: 'int'; value: number }
  | { name: string; kind: 'string'; value: string }
  | { name: string; kind: 'floats'; value: readonly number[] }
  | { name: string; kind: 'ints'; value: readonly number[] }
  | { name: string; kind: 'tensor'; value: OnnxTensor }
  | { name: string; kind: 'graph'; value: OnnxGraph };

export interface OnnxNode {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  attributes?: readonly OnnxAttribute[];
}

export interface OnnxValueInfo {
  name: string;
  elemType: OnnxDtypeName;
  /** A number is a fixed dimension, a string a symbolic one (e.g. the batch size 'N'). */
  shape: readonly (number | string)[];
}

export interface OnnxGraph {
  name: string;
  nodes: readonly OnnxNode[];
  initializers: readonly OnnxTensor[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
}

export interface OnnxModelOptions {
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  metadata?: Record<string, string>;
  opset?: number;
}

let modelType: protobuf.Type | undefined;
function getModelType(): protobuf.Type {
  modelType ??= protobuf.parse(ONNX_SUBSET, { keepCase: true }).root.lookupType('onnx.ModelProto');
  return modelType;
}

function tensorToProto(t: OnnxTensor): Record<string, unknown> {
  const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const expected = t.dims.reduce((a, b) => a * b, 1);
  if (expected !== t.data.length)
    throw new FirnError(
      'E_MODEL_INVALID',
      `initializer ${t.name}: dims hold ${expected} values, data has ${t.data.length}`,
    );
  // raw_data is little-endian by the spec; typed arrays are host-endian, so refuse big-endian hosts.
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1)
    throw new FirnError('E_UNSUPPORTED', 'ONNX writing needs a little-endian host');
  const base = {
    name: t.name,
    dims: [...t.dims],
    data_type: ONNX_DTYPE[t.dtype === 'float' ? 'float' : 'int64'],
  };
  if (t.externalData !== undefined) {
    const e = t.externalData;
    return {
      ...base,
      data_location: 1,
      external_data: [
        { key: 'location', value: e.location },
        ...(e.offset === undefined ? [] : [{ key: 'offset', value: String(e.offset) }]),
        { key: 'length', value: String(e.length ?? raw.length) },
      ],
    };
  }
  return { ...base, raw_data: raw };
}

function attributeToProto(a: OnnxAttribute): Record<string, unknown> {
  switch (a.kind) {
    case 'float':
      return { name: a.name, type: ATTR_TYPE.float, f: a.value };
    case 'int':
      return { name: a.name, type: ATTR_TYPE.int, i: a.value };
    case 'string':
      return { name: a.name, type: ATTR_TYPE.string, s: new TextEncoder().encode(a.value) };
    case 'floats':
      return { name: a.name, type: ATTR_TYPE.floats, floats: [...a.value] };
    case 'ints':
      return { name: a.name, type: ATTR_TYPE.ints, ints: [...a.value] };
    case 'tensor':
      return { name: a.name, type: ATTR_TYPE.tensor, t: tensorToProto(a.value) };
    case 'graph':
      return { name: a.name, type: ATTR_TYPE.graph, g: graphToProto(a.value) };
  }
}

function valueInfoToProto(v: OnnxValueInfo): Record<string, unknown> {
  return {
    name: v.name,
    type: {
      tensor_type: {
        elem_type: ONNX_DTYPE[v.elemType],
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

function graphToProto(graph: OnnxGraph): Record<string, unknown> {
  return {
    name: graph.name,
    node: graph.nodes.map((n, i) => ({
      input: [...n.inputs],
      output: [...n.outputs],
      name: n.name ?? `${n.opType.toLowerCase()}_${i}`,
      op_type: n.opType,
      attribute: (n.attributes ?? []).map(attributeToProto),
    })),
    initializer: graph.initializers.map(tensorToProto),
    input: graph.inputs.map(valueInfoToProto),
    output: graph.outputs.map(valueInfoToProto),
  };
}

/** Serialise a graph into ONNX ModelProto bytes (IR version 8, default-domain opset 13 unless set). */
export function encodeOnnxModel(graph: OnnxGraph, opts: OnnxModelOptions = {}): Uint8Array {
  const type = getModelType();
  const message = {
    ir_version: ONNX_IR_VERSION,
    producer_name: opts.producerName ?? 'firn',
    producer_version: opts.producerVersion ?? '1',
    doc_string: opts.docString ?? '',
    opset_import: [{ domain: '', version: opts.opset ?? ONNX_OPSET }],
    metadata_props: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: graphToProto(graph),
  };
  return type.encode(type.fromObject(message)).finish();
}
