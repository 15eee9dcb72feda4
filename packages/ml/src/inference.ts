import { FirnError, TooLargeError } from '@firn/core';
import type * as Ort from 'onnxruntime-node';
import { onnxErrorCode, onnxErrorReason } from './onnxErrors.ts';
import { assertNoExternalData } from './onnxExternalData.ts';
import type { TensorMap, TensorType, TensorValue } from './tensorJson.ts';

// onnxruntime-node loads its native binding (and libonnxruntime) when its module is evaluated. It
// is imported on first use, so that a process which never runs a model (the enclave's key-holding
// parent, decision 0851) never maps it, and nothing native loads before the enclave has checked
// its image (docs/enclave-image.md).
// onnxruntime 1.30 also starts telemetry with its first session: it writes events that name the
// model (graph name, producer, custom metadata) to an SQLite store under the user's home and
// /tmp, and uploads them over HTTPS when it can. In the enclave those are host files (and a
// network path): a sealed model's metadata would leak. It reads this variable when it starts.
let ortModule: Promise<typeof Ort> | undefined;
export const loadOrt = (): Promise<typeof Ort> => {
  process.env.ORT_DISABLE_TELEMETRY = '1';
  // Its own logger would print a failing kernel's status (shapes, and the index Gather refused:
  // a value of the requester's input) on stderr; the error carries it to the requester, sealed.
  ortModule ??= import('onnxruntime-node').then((m) => {
    m.env.logLevel = 'fatal';
    return m;
  });
  return ortModule;
};

export interface LoadOnnxModelOptions {
  /** Threads for one operator; 0 lets onnxruntime choose. Default 1, to be predictable on shared hosts. */
  intraOpThreads?: number;
  /** Model size cap in bytes; default 2 GiB (protobuf's own limit). */
  maxModelBytes?: number;
}

export interface OnnxInputMetadata {
  name: string;
  type: TensorType | string;
  /** A number is fixed; a string or -1 is a free (symbolic) dimension. */
  shape: readonly (number | string)[];
}

export interface OnnxModel {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly OnnxInputMetadata[];
  /** The graph's declared outputs: name, element type and shape (same form as inputMetadata). */
  readonly outputMetadata: readonly OnnxInputMetadata[];
  /**
   * The outputs' types and dims the graph declares for these inputs (`declaredOutputShapes`), or
   * undefined when they are not all known before the run.
   */
  declaredOutputs(inputs: TensorMap): Record<string, { type: string; dims: number[] }> | undefined;
  /** Run once; the session stays loaded, so repeated calls are warm. */
  run(inputs: TensorMap): Promise<Record<string, Ort.Tensor>>;
  release(): Promise<void>;
}

function describeShape(shape: readonly (number | string)[]): string {
  return `[${shape.map((d) => (typeof d === 'number' && d >= 0 ? String(d) : typeof d === 'string' ? d : '?')).join(', ')}]`;
}

/**
 * Check inputs against the model's declared names, element types and shapes before anything runs.
 * It proves only that the inputs match the graph's signature, not that the values are meaningful.
 */
export function checkInputs(meta: readonly OnnxInputMetadata[], inputs: TensorMap): void {
  const expected = new Map(meta.map((m) => [m.name, m]));
  for (const name of Object.keys(inputs))
    if (!expected.has(name))
      throw new FirnError(
        'E_INPUT_INVALID',
        `input "${name}" is not an input of the model (expected ${[...expected.keys()].join(', ')})`,
        {
          details: { input: name },
        },
      );
  for (const m of meta) {
    const t = inputs[m.name];
    if (t === undefined)
      throw new FirnError('E_INPUT_INVALID', `input "${m.name}" is missing`, { details: { input: m.name } });
    if (t.type !== m.type)
      throw new FirnError('E_INPUT_INVALID', `input "${m.name}": expected type ${m.type}, got ${t.type}`, {
        details: { input: m.name, expected: String(m.type), actual: t.type },
      });
    // An empty declared shape means the model leaves the shape unspecified.
    if (m.shape.length === 0) continue;
    const ok =
      t.dims.length === m.shape.length &&
      m.shape.every((d, i) => typeof d !== 'number' || d < 0 || d === t.dims[i]);
    if (!ok)
      throw new FirnError(
        'E_INPUT_INVALID',
        `input "${m.name}": expected shape ${describeShape(m.shape)}, got [${t.dims.join(', ')}]`,
        { details: { input: m.name, expected: describeShape(m.shape), actual: `[${t.dims.join(', ')}]` } },
      );
  }
}

/**
 * The outputs' element types and dims as the graph declares them for `inputs`: a fixed dimension
 * as declared, a symbolic one (e.g. the batch size 'N') as the inputs bind it (the dim of an input
 * declared with the same name). Undefined when any output has a free dimension no input binds, a
 * dimension the graph leaves unknown (-1 or no shape), is not a tensor, or when the inputs bind one
 * name to two sizes. It reads only the inputs' dims, never their values, and proves nothing about
 * what a run returns: onnxruntime may return other dims than a graph declares. For the warm
 * session's error answers, padded to the length the ok answer would have
 * (docs/decisions/1735-session-messages-padded.md).
 */
export function declaredOutputShapes(
  inputMeta: readonly OnnxInputMetadata[],
  outputMeta: readonly OnnxInputMetadata[],
  inputs: TensorMap,
): Record<string, { type: string; dims: number[] }> | undefined {
  const bound = new Map<string, number>();
  for (const m of inputMeta) {
    const t = inputs[m.name];
    if (t === undefined || t.dims.length !== m.shape.length) continue;
    for (const [i, d] of m.shape.entries()) {
      if (typeof d !== 'string') continue;
      const got = bound.get(d);
      if (got !== undefined && got !== t.dims[i]) return undefined;
      bound.set(d, t.dims[i]!);
    }
  }
  const out: Record<string, { type: string; dims: number[] }> = Object.create(null);
  for (const m of outputMeta) {
    if (m.type === 'non-tensor' || m.shape.length === 0) return undefined;
    const dims: number[] = [];
    for (const d of m.shape) {
      const n = typeof d === 'string' ? bound.get(d) : d;
      if (n === undefined || !Number.isSafeInteger(n) || n < 0) return undefined;
      dims.push(n);
    }
    out[m.name] = { type: m.type, dims };
  }
  return out;
}

function toOrtTensor(ort: typeof Ort, t: TensorValue): Ort.Tensor {
  return new ort.Tensor(t.type, t.data, t.dims);
}

/**
 * Load an ONNX model from bytes into a CPU onnxruntime session. A model with external tensor data
 * is refused before onnxruntime sees it (E_MODEL_INVALID). A model onnxruntime refuses fails with
 * E_MODEL_INVALID when its reason is one of the graph checks `onnxErrorCode` knows, and with
 * E_JOB_FAILED otherwise (an allocation failure the host can cause is never typed, decision 1597).
 * `run` raises E_INPUT_INVALID for inputs the graph or a kernel refuses (rank, dimensions, type,
 * name, a Reshape, Gather, broadcast... that cannot apply to these tensors) and E_JOB_FAILED for
 * anything else. Messages carry onnxruntime's reason (shapes, names; Gather names the index it
 * refused), sealed to the requester; never model bytes.
 */
export async function loadOnnxModel(
  modelBytes: Uint8Array,
  opts: LoadOnnxModelOptions = {},
): Promise<OnnxModel> {
  const max = opts.maxModelBytes ?? 2 ** 31 - 1;
  if (!(modelBytes instanceof Uint8Array) || modelBytes.length === 0)
    throw new FirnError('E_MODEL_INVALID', 'model bytes are empty');
  if (modelBytes.length > max) throw new TooLargeError('ONNX model', modelBytes.length, max);
  // onnxruntime would read external tensor data from host files next to the working directory.
  assertNoExternalData(modelBytes);
  const ort = await loadOrt();
  let session: Ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelBytes, {
      executionProviders: ['cpu'],
      intraOpNumThreads: opts.intraOpThreads ?? 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      logSeverityLevel: 4,
    });
  } catch (cause) {
    throw engineError(cause, 'load', 'onnxruntime cannot load the model');
  }
  const inputMetadata: OnnxInputMetadata[] = session.inputMetadata.map((m) =>
    m.isTensor
      ? { name: m.name, type: m.type, shape: m.shape }
      : { name: m.name, type: 'non-tensor', shape: [] },
  );
  const outputMetadata: OnnxInputMetadata[] = session.outputMetadata.map((m) =>
    m.isTensor
      ? { name: m.name, type: m.type, shape: m.shape }
      : { name: m.name, type: 'non-tensor', shape: [] },
  );
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputMetadata,
    outputMetadata,
    declaredOutputs: (inputs) => declaredOutputShapes(inputMetadata, outputMetadata, inputs),
    async run(inputs) {
      checkInputs(inputMetadata, inputs);
      const feeds: Record<string, Ort.Tensor> = Object.create(null);
      for (const [name, t] of Object.entries(inputs)) feeds[name] = toOrtTensor(ort, t);
      try {
        return (await session.run(feeds)) as Record<string, Ort.Tensor>;
      } catch (cause) {
        throw engineError(cause, 'run', 'inference failed');
      }
    },
    release: () => session.release(),
  };
}

// Typed only where the cause is the model or its input (onnxErrors.ts); classified on the whole
// message, before it is shortened.
function engineError(cause: unknown, phase: 'load' | 'run', what: string): FirnError {
  const code = onnxErrorCode(cause instanceof Error ? cause.message : String(cause), phase) ?? 'E_JOB_FAILED';
  return new FirnError(code, `${what}: ${shortReason(cause)}`);
}

// onnxruntime's messages name nodes and shapes, not tensor contents; still cap their length.
function shortReason(e: unknown): string {
  const msg = onnxErrorReason(e instanceof Error ? e.message : String(e));
  return msg.length > 300 ? `${msg.slice(0, 300)}...` : msg;
}
