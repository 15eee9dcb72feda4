import { FirnError } from '@firn/core';
import { type Prng, shuffledIndices } from './prng.ts';
import { readSafetensors } from './safetensors.ts';
import type { Task } from './modelDefinition.ts';

/** Row-major training data. For classification y holds one class index per row (yCols = 1). */
export interface Dataset {
  x: Float32Array;
  y: Float32Array;
  rows: number;
  cols: number;
  /** Values per row in y: 1 for class indices, the number of targets for regression. */
  yCols: number;
  /** Class index -> original label, when labels were mapped (classification). */
  labels?: string[];
  featureNames?: string[];
}

/** Feature standardisation fitted on the training split only; stored with the model. */
export interface Standardizer {
  mean: number[];
  std: number[];
}

/** Mean and (population) standard deviation per column; a constant column gets std 1 to stay finite. */
export function fitStandardizer(x: Float32Array, rows: number, cols: number): Standardizer {
  const mean = new Float64Array(cols);
  const m2 = new Float64Array(cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      // Welford's update keeps the variance accurate for large offsets.
      const v = x[r * cols + c]!;
      const d = v - mean[c]!;
      mean[c] = mean[c]! + d / (r + 1);
      m2[c] = m2[c]! + d * (v - mean[c]!);
    }
  const std = Array.from(m2, (s) => {
    const sd = rows > 0 ? Math.sqrt(s / rows) : 0;
    return sd > 1e-12 ? Math.fround(sd) : 1;
  });
  // float32 values, so the exported graph and training use the very same constants.
  return { mean: Array.from(mean, (m) => Math.fround(m)), std };
}

export function applyStandardizer(x: Float32Array, cols: number, s: Standardizer): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = i % cols;
    out[i] = (x[i]! - s.mean[c]!) / s.std[c]!;
  }
  return out;
}

function takeRows(ds: Dataset, idx: Uint32Array): Dataset {
  const x = new Float32Array(idx.length * ds.cols);
  const y = new Float32Array(idx.length * ds.yCols);
  idx.forEach((r, i) => {
    x.set(ds.x.subarray(r * ds.cols, (r + 1) * ds.cols), i * ds.cols);
    y.set(ds.y.subarray(r * ds.yCols, (r + 1) * ds.yCols), i * ds.yCols);
  });
  return { ...ds, x, y, rows: idx.length };
}

/** A seeded random split: `fraction` of the rows (rounded, at least one when fraction > 0) go to validation. */
export function splitDataset(ds: Dataset, fraction: number, rng: Prng): { train: Dataset; val: Dataset } {
  if (!(fraction >= 0 && fraction < 1))
    throw new FirnError('E_DATA_INVALID', 'validation fraction must be in [0, 1)');
  const idx = shuffledIndices(ds.rows, rng);
  const nVal = fraction === 0 ? 0 : Math.max(1, Math.round(ds.rows * fraction));
  if (ds.rows - nVal < 1)
    throw new FirnError('E_DATA_INVALID', 'no rows left for training after the validation split');
  return { val: takeRows(ds, idx.subarray(0, nVal)), train: takeRows(ds, idx.subarray(nVal)) };
}

/** Check a dataset's arrays against its declared sizes and, for classification, its class range. */
export function checkDataset(ds: Dataset, task: Task, classes?: number): void {
  const bad = (m: string): FirnError => new FirnError('E_DATA_INVALID', `dataset: ${m}`);
  if (!Number.isInteger(ds.rows) || ds.rows < 1) throw bad('needs at least one row');
  if (!Number.isInteger(ds.cols) || ds.cols < 1) throw bad('needs at least one feature column');
  if (ds.x.length !== ds.rows * ds.cols)
    throw bad(`x has ${ds.x.length} values, expected rows x cols = ${ds.rows * ds.cols}`);
  if (ds.y.length !== ds.rows * ds.yCols)
    throw bad(`y has ${ds.y.length} values, expected ${ds.rows * ds.yCols}`);
  for (let i = 0; i < ds.x.length; i++)
    if (!Number.isFinite(ds.x[i]!))
      throw new FirnError(
        'E_DATA_INVALID',
        `dataset: x row ${Math.floor(i / ds.cols)} column ${i % ds.cols} is not finite`,
        {
          details: { row: Math.floor(i / ds.cols), column: i % ds.cols },
        },
      );
  for (let i = 0; i < ds.y.length; i++) {
    const v = ds.y[i]!;
    if (!Number.isFinite(v)) throw bad(`y row ${Math.floor(i / ds.yCols)} is not finite`);
    if (
      task === 'classification' &&
      (!Number.isInteger(v) || v < 0 || (classes !== undefined && v >= classes))
    )
      throw bad(`y row ${i} is not a class index in 0..${(classes ?? 1) - 1}`);
  }
}

/**
 * Read a dataset stored as safetensors with tensors `x` [rows, cols] and `y` [rows] or [rows, k]
 * (any of F32, F64, I32, I64, U8). Malformed files and shape disagreements fail with E_DATA_INVALID.
 */
export function datasetFromSafetensors(bytes: Uint8Array, opts: { maxBytes?: number } = {}): Dataset {
  const f = readSafetensors(bytes, {
    errorCode: 'E_DATA_INVALID',
    ...(opts.maxBytes ? { maxBytes: opts.maxBytes } : {}),
  });
  const x = f.tensors['x'];
  const y = f.tensors['y'];
  if (!x || !y) throw new FirnError('E_DATA_INVALID', 'dataset safetensors needs tensors "x" and "y"');
  if (x.shape.length !== 2)
    throw new FirnError('E_DATA_INVALID', `dataset x must be [rows, cols], got [${x.shape.join(', ')}]`);
  if (y.shape.length < 1 || y.shape.length > 2 || y.shape[0] !== x.shape[0])
    throw new FirnError(
      'E_DATA_INVALID',
      `dataset y must be [rows] or [rows, k] with rows = ${x.shape[0]}, got [${y.shape.join(', ')}]`,
    );
  const toF32 = (d: ArrayLike<number | bigint>): Float32Array =>
    Float32Array.from(d as ArrayLike<number>, (v) => Number(v));
  return { x: toF32(x.data), y: toF32(y.data), rows: x.shape[0]!, cols: x.shape[1]!, yCols: y.shape[1] ?? 1 };
}
