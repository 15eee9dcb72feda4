import { describe, expect, it } from 'vitest';
import { onnxErrorCode, onnxErrorReason } from './onnxErrors.ts';

// Decision 1597: every message below is onnxruntime-node 1.30.0's own text, collected by
// provoking the failure (inference.test.ts provokes most of them again through loadOnnxModel).
// Typed ones earn the enclave's signature (1595), so the untyped rows are the guarantee: an
// allocation failure the host can cause, and anything not known, must stay undefined.
const W = (op: string, name: string, status: string) =>
  `Non-zero status code returned while running ${op} node. Name:'${name}' Status Message: ${status}`;
const ARENA = (size: string) =>
  `/onnxruntime_src/onnxruntime/core/framework/bfc_arena.cc:360 void* onnxruntime::BFCArena::AllocateRawInternal(size_t, bool, onnxruntime::Stream*) Failed to allocate memory for requested buffer of size ${size}\n`;

const RUN_TYPED: [string, string][] = [
  ['rank', 'Invalid rank for input: x Got: 1 Expected: 2 Please fix either the inputs/outputs or the model.'],
  [
    'dims',
    'Got invalid dimensions for input: x for the following indices\n index: 0 Got: 3 Expected: 2\n Please fix either the inputs/outputs or the model.',
  ],
  ['dtype', 'Unexpected input data type. Actual: (tensor(double)) , expected: (tensor(float))'],
  ['missing input', "input 'x' is missing in 'feeds'."],
  ['MatMul', W('MatMul', 'matmul_0', 'matmul_helper.h:59 Compute MatMul dimension mismatch')],
  [
    'Reshape size',
    W(
      'Reshape',
      'reshape_0',
      '/onnxruntime_src/onnxruntime/core/providers/cpu/tensor/reshape_helper.h:91 onnxruntime::ReshapeHelper::ReshapeHelper(const onnxruntime::TensorShape&, onnxruntime::TensorShapeVector&, bool) input_shape_size == requested_shape_size was false. The input tensor cannot be reshaped to the requested shape. Input shape:{6}, requested shape:{4,4}\n',
    ),
  ],
  [
    'Reshape two -1',
    W(
      'Reshape',
      'reshape_0',
      '/onnxruntime_src/onnxruntime/core/providers/cpu/tensor/reshape_helper.h:29 onnxruntime::ReshapeHelper::ReshapeHelper(const onnxruntime::TensorShape&, onnxruntime::TensorShapeVector&, bool) unknown_dim == -1 was false. At most one dimension can be -1.\n',
    ),
  ],
  [
    'Reshape -2',
    W(
      'Reshape',
      'reshape_0',
      '/onnxruntime_src/onnxruntime/core/providers/cpu/tensor/reshape_helper.h:27 onnxruntime::ReshapeHelper::ReshapeHelper(const onnxruntime::TensorShape&, onnxruntime::TensorShapeVector&, bool) requested_shape[i] >= -1 was false. A dimension cannot be less than -1, got -2\n',
    ),
  ],
  [
    'Gather',
    W(
      'Gather',
      'gather_0',
      'indices element out of data bounds, idx=9 must be within the inclusive range [-4,3]',
    ),
  ],
  [
    'Gather negative',
    W(
      'Gather',
      'gather_0',
      'indices element out of data bounds, idx=-9 must be within the inclusive range [-4,3]',
    ),
  ],
  [
    'broadcast',
    W(
      'Add',
      'add_0',
      '/onnxruntime_src/onnxruntime/core/providers/cpu/math/element_wise_ops.h:563 void onnxruntime::BroadcastIterator::Init(ptrdiff_t, ptrdiff_t) axis == 1 || axis == largest was false. Attempting to broadcast an axis by a dimension other than 1. 3 by 5\n',
    ),
  ],
  [
    'Concat',
    W(
      'Concat',
      'concat_0',
      'concatbase.h:133 PrepareForComputeImpl Non concat axis dimensions must match: Axis 1 has mismatched dimensions of 5 and 3',
    ),
  ],
  ['Expand', W('Expand', 'expand_0', 'invalid expand shape')],
  [
    'Conv channels',
    W(
      'Conv',
      'y_nchwc',
      'Input channels C is not equal to kernel channels * group. C: 4 kernel channels: 3 group: 1',
    ),
  ],
  ['Conv small input', W('Conv', 'y_nchwc', 'Invalid input shape: {2,2}')],
  [
    'negative size',
    W(
      'ConstantOfShape',
      'constantofshape_0',
      '/onnxruntime_src/onnxruntime/core/framework/op_kernel.cc:83 virtual OrtValue* onnxruntime::OpKernelContext::OutputMLValue(int, const onnxruntime::TensorShape&) [ONNXRuntimeError] : 1 : FAIL : tensor.cc:57 CalculateTensorStorageSize Tensor shape.Size() must be >= 0\n',
    ),
  ],
  [
    'size overflow',
    W(
      'ConstantOfShape',
      'constantofshape_0',
      '/onnxruntime_src/onnxruntime/core/framework/op_kernel.cc:83 virtual OrtValue* onnxruntime::OpKernelContext::OutputMLValue(int, const onnxruntime::TensorShape&) [ONNXRuntimeError] : 1 : FAIL : Calculation for Tensor storage size overflowed\n',
    ),
  ],
];

RUN_TYPED.push(
  ['Gemm', W('Gemm', 'gemm_0', 'GEMM: Dimension mismatch, W: {5,3} K: 4 N:3')],
  [
    'Split',
    W(
      'Split',
      'split_0',
      "Cannot split using values in 'split' attribute. Axis=0 Input shape={5} NumOutputs=2 Num entries in 'split' (must equal number of outputs) was 2 Sum of sizes in 'split' (must equal size of selected axis) was 4",
    ),
  ],
  [
    'Squeeze',
    W(
      'Squeeze',
      'squeeze_0',
      '/onnxruntime_src/onnxruntime/core/providers/cpu/tensor/squeeze.h:53 static onnxruntime::TensorShapeVector onnxruntime::SqueezeBase::ComputeOutputShape(const onnxruntime::TensorShape&, const onnxruntime::TensorShapeVector&) input_shape[i] == 1 was false. Dimension of input 0 must be 1 instead of 2. shape={2,3}\n',
    ),
  ],
  ['TopK', W('TopK', 'topk_0', 'k argument [9] should not be greater than specified axis dim value [3]')],
  // Its source prefix names a concurrency::ThreadPool* parameter: not a thread-pool failure.
  [
    'GatherElements',
    W(
      'GatherElements',
      'gatherelements_0',
      '/onnxruntime_src/onnxruntime/core/providers/cpu/tensor/gather_elements.cc:150 void onnxruntime::core_impl(const Tensor*, const Tensor*, Tensor*, int64_t, concurrency::ThreadPool*) [with Tin = long int; int64_t = long int] GatherElements op: Out of range value in index tensor\n',
    ),
  ],
  [
    'BatchNormalization',
    W('BatchNormalization', 'batchnormalization_0', 'Invalid input scale: 0th dimension != 4'),
  ],
);

const LOAD_TYPED: [string, string][] = [
  ['protobuf', 'Failed to load model because protobuf parsing failed.'],
  [
    'undefined tensor',
    "Invalid model. Node input 'nope' is not a graph input, initializer, or output of a previous node.",
  ],
  [
    'unknown op',
    'This is an invalid model. In Node, ("nosuchop_0", NoSuchOp, "", -1) : ("x": tensor(float),) -> ("y": tensor(float),) , Error No Op registered for NoSuchOp with domain_version of 13',
  ],
  [
    'type mismatch',
    'Type Error: Type parameter (T) of Optype (Add) bound to different types (tensor(float) and tensor(int64) in node (add_0).',
  ],
  [
    'shape inference',
    'Node (matmul_0) Op (MatMul) [ShapeInferenceError] Incompatible dimensions for matrix multiplication',
  ],
  [
    'type inference',
    'Node (transpose_0) Op (Transpose) [TypeInferenceError] Attribute perm for Transpose has repeated value: 0',
  ],
  [
    'Softmax axis',
    "Node (softmax_0) Op (Softmax) [ShapeInferenceError] 'axis' must be in [-2 , 1]. Its actual value is: 3",
  ],
  [
    'Tile repeats',
    "Node (tile_0) Op (Tile) [ShapeInferenceError] 'Repeats' input has incorrect number of values. The number of values in 'repeats' must be equal to the number of input dimensions.",
  ],
  [
    'Slice axis',
    'Node (slice_0) Op (Slice) [ShapeInferenceError] Unexpected axis value: 5. Expected range [-2, 2)',
  ],
];

// Never typed: allocation and system failures (the host can cause them), and unknown text.
const RUN_UNTYPED: [string, string][] = [
  ['arena, Expand 4 TiB', W('Expand', 'expand_0', ARENA('4398046511104'))],
  ['arena, ConstantOfShape', W('ConstantOfShape', 'constantofshape_0', ARENA('4398046511104'))],
  // The same arena failure under a kernel whose other failures are typed.
  ['arena, Reshape', W('Reshape', 'reshape_0', ARENA('1048576'))],
  ['arena, Gather', W('Gather', 'gather_0', ARENA('64'))],
  // onnxruntime's formats for C++ exceptions (core/framework/error_code_helper, inference_session.cc).
  ['bad_alloc', W('MatMul', 'matmul_0', 'std::bad_alloc')],
  ['bad_alloc bare', 'std::bad_alloc'],
  ['exception', 'Exception during initialization: std::bad_alloc'],
  [
    'thread pool',
    W(
      'MatMul',
      'matmul_0',
      'threadpool.cc:140 ThreadPool failed to create a thread: Resource temporarily unavailable',
    ),
  ],
  ['system error', W('Conv', 'conv_0', 'std::system_error: Resource temporarily unavailable')],
  ['unknown kernel status', W('Add', 'add_0', 'something went wrong')],
  ['unknown', 'Error: something unforeseen'],
  ['empty', ''],
  // A requester-chosen node name cannot make a status typed: the status is read after the last marker.
  [
    'name holds a typed phrase, status is an allocation failure',
    W(
      'Reshape',
      "x' Status Message: The input tensor cannot be reshaped to the requested shape. '",
      ARENA('64'),
    ),
  ],
  [
    'name holds the wrapper, status unknown',
    W('Add', "a' Status Message: invalid expand shape", 'something went wrong'),
  ],
];

const LOAD_UNTYPED: [string, string][] = [
  ['exception', 'Exception during initialization: std::bad_alloc'],
  ['bad_alloc', 'std::bad_alloc'],
  ['arena', ARENA('2147483648')],
  ['unknown', 'Load model from buffer failed: something unforeseen'],
];

describe('onnxErrorCode', () => {
  it.each(RUN_TYPED)('run: %s is the input’s fault (E_INPUT_INVALID)', (_, msg) => {
    expect(onnxErrorCode(msg, 'run')).toBe('E_INPUT_INVALID');
  });
  it.each(LOAD_TYPED)('load: %s is the model’s fault (E_MODEL_INVALID)', (_, msg) => {
    expect(onnxErrorCode(msg, 'load')).toBe('E_MODEL_INVALID');
  });
  it.each(RUN_UNTYPED)('run: %s stays untyped', (_, msg) => {
    expect(onnxErrorCode(msg, 'run')).toBeUndefined();
  });
  it.each(LOAD_UNTYPED)('load: %s stays untyped', (_, msg) => {
    expect(onnxErrorCode(msg, 'load')).toBeUndefined();
  });

  it('a node or input name holding resource words does not untype the requester’s own failure', () => {
    // The farm of 1595: a requester names its nodes so that its deterministic failure reads as an
    // allocation failure and stays unsigned. Names are never read for resource words.
    expect(
      onnxErrorCode(
        W(
          'Gather',
          'Failed to allocate bad_alloc ThreadPool',
          'indices element out of data bounds, idx=9 must be within the inclusive range [-4,3]',
        ),
        'run',
      ),
    ).toBe('E_INPUT_INVALID');
    expect(
      onnxErrorCode(
        'Invalid rank for input: Failed to allocate Got: 1 Expected: 2 Please fix either the inputs/outputs or the model.',
        'run',
      ),
    ).toBe('E_INPUT_INVALID');
    expect(
      onnxErrorCode(
        "Invalid model. Node input 'std::bad_alloc' is not a graph input, initializer, or output of a previous node.",
        'load',
      ),
    ).toBe('E_MODEL_INVALID');
  });

  it('a load message is never read as a run message and back', () => {
    expect(onnxErrorCode(LOAD_TYPED[0]![1], 'run')).toBeUndefined();
    expect(onnxErrorCode(RUN_TYPED[0]![1], 'load')).toBeUndefined();
    expect(onnxErrorCode(RUN_TYPED[5]![1], 'load')).toBeUndefined();
  });

  it('refuses to classify a message over 64 KiB', () => {
    expect(onnxErrorCode(W('Expand', 'x'.repeat(70_000), 'invalid expand shape'), 'run')).toBeUndefined();
  });
});

describe('onnxErrorReason', () => {
  it('keeps the reason of a kernel failure within the cap: op, node, and the status without its source location', () => {
    expect(onnxErrorReason(RUN_TYPED[5]![1])).toBe(
      "Reshape node 'reshape_0': The input tensor cannot be reshaped to the requested shape. Input shape:{6}, requested shape:{4,4}",
    );
    expect(onnxErrorReason(RUN_TYPED[4]![1])).toBe("MatMul node 'matmul_0': MatMul dimension mismatch");
    expect(onnxErrorReason(RUN_TYPED[8]![1])).toBe(
      "Gather node 'gather_0': indices element out of data bounds, idx=9 must be within the inclusive range [-4,3]",
    );
    expect(onnxErrorReason(LOAD_TYPED[0]![1])).toBe(LOAD_TYPED[0]![1]);
  });
});
