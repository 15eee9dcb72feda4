import type { ErrorCode } from '@firn/core';

/**
 * Which onnxruntime failures are a verdict on the requester's model or input, and which are not
 * (docs/decisions/1597-typed-engine-failures.md). The enclave signs a JobFailure for a typed
 * model or input error (decision 1595), so a message is typed only where its cause is provably
 * the committed model or input tensors: a graph onnxruntime refuses to load, an input whose rank,
 * dimensions, type or name do not fit the graph, a kernel that refuses the shapes or indices it
 * was given. Everything else stays untyped (E_JOB_FAILED, never signed): an allocation failure
 * (which the host causes by starving the enclave of memory), a thread-pool or system error, and
 * any message not in these tables. Matched on onnxruntime-node 1.30's own text, collected by
 * provoking each failure (onnxErrors.test.ts holds the real messages); a new onnxruntime that
 * rewords one makes it untyped, which costs the node the share of 1571 and opens nothing.
 */

/** A message onnxruntime raises, the code it earns, and why that is the requester's own. */
interface OnnxErrorRule {
  code: 'E_MODEL_INVALID' | 'E_INPUT_INVALID';
  /** Anchored at the start of the message (load, input binding) or of a kernel's status message. */
  pattern: RegExp;
}

// Model loading (InferenceSession.create): protobuf, graph and schema checks, type and shape
// inference. Each prefix is written by validation code that allocates nothing the host could
// starve; an exception during loading (std::bad_alloc) reaches the caller under another prefix
// ("Exception during initialization: ...") and matches none. These messages quote the
// requester's node and tensor names, so only their anchored start is read.
const LOAD_RULES: readonly OnnxErrorRule[] = [
  { code: 'E_MODEL_INVALID', pattern: /^Failed to load model because protobuf parsing failed\.$/ },
  { code: 'E_MODEL_INVALID', pattern: /^Invalid model\. / },
  { code: 'E_MODEL_INVALID', pattern: /^This is an invalid model\. / },
  { code: 'E_MODEL_INVALID', pattern: /^Node \(.*\) Op \(\w+\) \[(?:Shape|Type)InferenceError\] /s },
  {
    code: 'E_MODEL_INVALID',
    pattern: /^Type Error: Type parameter \(\w+\) of Optype \(\w+\) bound to different types /,
  },
];

// Input binding (InferenceSession.run, before any kernel): the feeds against the graph's inputs,
// checked before anything is allocated. They quote the requester's input name; only the anchored
// start and end are read.
const FEED_RULES: readonly OnnxErrorRule[] = [
  {
    code: 'E_INPUT_INVALID',
    pattern:
      /^Invalid rank for input: .* Got: \d+ Expected: \d+ Please fix either the inputs\/outputs or the model\.$/s,
  },
  { code: 'E_INPUT_INVALID', pattern: /^Got invalid dimensions for input: .* for the following indices\n/s },
  {
    code: 'E_INPUT_INVALID',
    pattern: /^Unexpected input data type\. Actual: \(tensor\(\w+\)\) , expected: \(tensor\(\w+\)\)$/,
  },
  { code: 'E_INPUT_INVALID', pattern: /^input '.*' is missing in 'feeds'\.$/s },
];

// A kernel's status, after onnxruntime's wrapper (see KERNEL_WRAPPER). onnxruntime may prefix it
// with the source location and the failed condition ("/onnxruntime_src/...h:91 <signature> <cond>
// was false. "), which SOURCE_PREFIX allows. Each is a check of shapes or index values against
// the graph, a function of the model and the input tensors alone.
const SOURCE_PREFIX = String.raw`(?:\S+:\d+ (?:[^\n]*? )?)?`;
const kernel = (phrase: string): OnnxErrorRule => ({
  code: 'E_INPUT_INVALID',
  pattern: new RegExp(`^${SOURCE_PREFIX}${phrase}`, 's'),
});
const KERNEL_RULES: readonly OnnxErrorRule[] = [
  kernel(String.raw`The input tensor cannot be reshaped to the requested shape\.`), // Reshape
  kernel(String.raw`At most one dimension can be -1\.`), // Reshape
  kernel('A dimension cannot be less than -1'), // Reshape
  kernel(String.raw`indices element out of data bounds, idx=-?\d+ must be within the inclusive range`), // Gather
  kernel(String.raw`Attempting to broadcast an axis by a dimension other than 1\.`), // element-wise ops
  kernel('PrepareForComputeImpl Non concat axis dimensions must match'), // Concat
  kernel('invalid expand shape$'), // Expand
  kernel('Compute MatMul dimension mismatch$'), // MatMul
  kernel(String.raw`Input channels C is not equal to kernel channels \* group\.`), // Conv
  kernel(String.raw`Invalid input shape: \{[\d,]*\}$`), // Conv, pooling: input smaller than the kernel
  kernel('GEMM: Dimension mismatch, '), // Gemm
  kernel(String.raw`Cannot split using values in 'split' attribute\.`), // Split
  kernel(String.raw`Dimension of input \d+ must be 1 instead of \d+\.`), // Squeeze
  kernel(String.raw`k argument \[\d+\] should not be greater than specified axis dim value`), // TopK
  kernel('GatherElements op: Out of range value in index tensor'), // GatherElements
  kernel(String.raw`Invalid input scale: \d+th dimension != \d+$`), // BatchNormalization
  // A shape whose element count is negative or whose byte size overflows size_t: computed before
  // any allocation is attempted, from the shape alone.
  kernel(
    String.raw`\[ONNXRuntimeError\] : 1 : FAIL : (?:tensor\.cc:\d+ CalculateTensorStorageSize Tensor shape\.Size\(\) must be >= 0|Calculation for Tensor storage size overflowed)`,
  ),
];

/**
 * onnxruntime wraps a kernel's failure as "Non-zero status code returned while running <Op>
 * node. Name:'<node name>' Status Message: <status>". The node name is the requester's and may
 * hold any text, so the status is taken after the LAST " Status Message: ": a name cannot put
 * words into the status, and a status (onnxruntime's own text) quotes no node name.
 */
const KERNEL_WRAPPER =
  /^Non-zero status code returned while running (\w+) node\. Name:'.*' Status Message: (.*)$/s;

/**
 * Resource and system failures: never typed, wherever a rule would match. onnxruntime's arena
 * ("Failed to allocate memory for requested buffer of size N"), C++'s std::bad_alloc, an
 * exhausted or failed thread pool (not the `concurrency::ThreadPool*` parameter that kernel
 * signatures in a status's source prefix carry), a system error. Checked on a kernel's status (the only place
 * an allocation failure is reported together with a typed phrase's wrapper), never on text that
 * quotes the requester's names: a name holding these words must not untype its own failure.
 */
const RESOURCE_FAILURE =
  /Failed to allocate|bad_alloc|[Oo]ut of memory|BFCArena|AllocateRaw|[Tt]hread ?[Pp]ool(?!\*)|pthread|system_error|Resource temporarily unavailable|errno/;

/**
 * The typed code of an onnxruntime failure message, or undefined when its cause may be the host
 * (memory, threads, the system) or is not known. `phase` is where it was raised: `load`
 * (InferenceSession.create) or `run` (InferenceSession.run). Returns E_MODEL_INVALID for a graph
 * onnxruntime refuses to load, E_INPUT_INVALID for inputs or kernel checks that refuse the
 * model's data; the caller raises E_JOB_FAILED (never signed) for undefined.
 */
export function onnxErrorCode(message: string, phase: 'load' | 'run'): ErrorCode | undefined {
  if (typeof message !== 'string' || message.length > 64 * 1024) return undefined;
  const wrapped = phase === 'run' ? KERNEL_WRAPPER.exec(message) : null;
  const text = wrapped ? wrapped[2]! : message;
  if (wrapped && RESOURCE_FAILURE.test(text)) return undefined;
  const rules = phase === 'load' ? LOAD_RULES : wrapped ? KERNEL_RULES : FEED_RULES;
  return rules.find((r) => r.pattern.test(text))?.code;
}

/**
 * onnxruntime's reason in a form a requester reads: a kernel failure as "<Op> node '<name>':
 * <status>" with the C++ source location and failed condition dropped (they would fill the
 * length cap before the reason), anything else as it is. Shapes and names only; Gather's status
 * names the index it refused (the requester's own value; the message travels sealed to it).
 */
export function onnxErrorReason(message: string): string {
  const w = KERNEL_WRAPPER.exec(message);
  if (w === null) return message;
  const name =
    /^Non-zero status code returned while running \w+ node\. Name:'(.*)' Status Message: /s.exec(
      message,
    )?.[1] ?? '';
  const status = w[2]!
    .replace(/^\S+:\d+ [^\n]*? was false\. /, '')
    .replace(/^\S+\.(?:h|cc):\d+ (?:\w+ )?/, '')
    .trim();
  return `${w[1]} node '${name.slice(0, 64)}': ${status}`;
}
