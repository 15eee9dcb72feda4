import { FirnError } from '@firn/core';
import * as tf from '@tensorflow/tfjs';
import {
  applyStandardizer,
  checkDataset,
  type Dataset,
  fitStandardizer,
  type Standardizer,
  splitDataset,
} from './dataset.ts';
import {
  finalActivation,
  type ModelDefinition,
  type ModelShapes,
  type Task,
  taskOf,
  validateModelDefinition,
} from './modelDefinition.ts';
import { createPrng, shuffledIndices } from './prng.ts';
import { initTfBackend, type TfBackendName } from './tfBackend.ts';
import { buildTfModel, getTfWeights } from './tfModel.ts';
import { initialWeights, weightsFromSafetensors, weightsToSafetensors } from './weights.ts';

/** Stored beside the weights: what the exported model and any later inference must apply first. */
export interface Preprocessing {
  format: 'firn.preprocessing/v1';
  task: Task;
  features: number;
  standardize: Standardizer;
  /** Class index -> label (classification). */
  labels?: string[];
  featureNames?: string[];
}

export interface EpochEvent {
  epoch: number;
  loss: number;
  valLoss: number | null;
  metrics: { valAccuracy?: number };
}

export interface TrainMetrics {
  /** The backend that ran: conv models on cpu, others on the one asked for (wasm by default); never a fallback. */
  backend: TfBackendName;
  trainLoss: number;
  valLoss: number | null;
  trainAccuracy?: number;
  valAccuracy?: number;
  history: EpochEvent[];
  trainRows: number;
  valRows: number;
  /** Epochs actually run (fewer than asked when early stopping ended the training). */
  epochs: number;
  /** Present with `patience`: whether training stopped early, and the epoch with the lowest val loss. */
  earlyStopping?: { patience: number; stopped: boolean; bestEpoch: number; bestValLoss: number };
  /** Training samples processed per second of optimisation (validation passes excluded). */
  samplesPerSecond: number;
  trainSeconds: number;
}

export interface TrainParams {
  /** A definition object or untrusted JSON; validated before anything runs. */
  definition: ModelDefinition | unknown;
  /** safetensors bytes with one tensor per `layers.<i>.<kind>`; seeded Glorot initialisation when absent. */
  initialWeights?: Uint8Array;
  data: Pick<Dataset, 'x' | 'y' | 'rows' | 'cols'> &
    Partial<Pick<Dataset, 'yCols' | 'labels' | 'featureNames'>>;
  task: Task;
  epochs: number;
  batchSize: number;
  /** Overrides the definition's optimizer learning rate when given. */
  learningRate?: number;
  seed: number;
  /** Fraction of rows held out for validation, in [0, 1). */
  validationSplit: number;
  /** Default 'wasm'. If it cannot start, training fails with E_UNAVAILABLE (no fallback, decision 1597). */
  backend?: TfBackendName;
  /**
   * Early stopping: stop once the validation loss has not improved (by more than `minDelta`) for
   * this many epochs in a row. Needs a validation split > 0. Absent: run every epoch. The weights
   * returned are the last epoch's (as Keras' EarlyStopping without restore_best_weights).
   */
  patience?: number;
  /** Smallest decrease of the validation loss that counts as an improvement (default 0). */
  minDelta?: number;
  onEpoch?: (e: EpochEvent) => void;
  /**
   * Stop at the next epoch boundary once aborted (after at least one epoch), returning the
   * epochs run so far. With a signal the loop yields one macrotask between epochs, so a message
   * that aborts it can arrive; without one (every job) the loop never yields. The ML runtime's
   * spare child passes one to its warm-up (docs/decisions/1330-spare-child-checked-after-load.md).
   */
  signal?: AbortSignal;
}

export interface TrainResult {
  definition: ModelDefinition;
  /** The refined weights as safetensors, named `layers.<i>.<kind>`. */
  weights: Uint8Array;
  preprocessing: Preprocessing;
  metrics: TrainMetrics;
  /** rows trained on x epochs: the amount of work a Work Proof reports. */
  workUnits: number;
}

const CAPS = { maxEpochs: 10_000, maxBatch: 65_536, maxWorkUnits: 1e11 };

function invalid(message: string): FirnError {
  return new FirnError('E_INVALID_INPUT', `training: ${message}`);
}

function checkParams(p: TrainParams): void {
  if (!Number.isInteger(p.epochs) || p.epochs < 1 || p.epochs > CAPS.maxEpochs)
    throw invalid(`epochs must be an integer in 1..${CAPS.maxEpochs}`);
  if (!Number.isInteger(p.batchSize) || p.batchSize < 1 || p.batchSize > CAPS.maxBatch)
    throw invalid(`batchSize must be an integer in 1..${CAPS.maxBatch}`);
  if (!Number.isSafeInteger(p.seed)) throw invalid('seed must be a safe integer');
  if (!(p.validationSplit >= 0 && p.validationSplit < 1)) throw invalid('validationSplit must be in [0, 1)');
  if (
    p.learningRate !== undefined &&
    !(Number.isFinite(p.learningRate) && p.learningRate > 0 && p.learningRate <= 10)
  )
    throw invalid('learningRate must be in (0, 10]');
  if (p.task !== 'classification' && p.task !== 'regression')
    throw invalid('task must be classification or regression');
  if (p.data.rows * p.epochs > CAPS.maxWorkUnits) throw invalid('rows x epochs is over the work cap');
  if (p.patience !== undefined) {
    if (!Number.isInteger(p.patience) || p.patience < 1 || p.patience > CAPS.maxEpochs)
      throw invalid(`patience must be an integer in 1..${CAPS.maxEpochs}`);
    if (p.validationSplit === 0) throw invalid('patience needs a validation split above 0');
  }
  if (p.minDelta !== undefined && !(Number.isFinite(p.minDelta) && p.minDelta >= 0))
    throw invalid('minDelta must be a finite number >= 0');
}

function classCount(def: ModelDefinition, shapes: ModelShapes): number {
  return finalActivation(def) === 'sigmoid' ? 2 : shapes.outputShape[0]!;
}

// Targets as the loss expects them: one-hot for (sparse) categorical, [N, 1] for binary, as-is for regression.
function targetTensor(ds: Dataset, def: ModelDefinition, classes: number): tf.Tensor {
  if (def.loss === 'categoricalCrossentropy' || def.loss === 'sparseCategoricalCrossentropy')
    return tf.tidy(() => tf.oneHot(tf.tensor1d(ds.y, 'int32'), classes).toFloat());
  return tf.tensor2d(ds.y, [ds.rows, ds.yCols]);
}

function lossName(def: ModelDefinition): string {
  switch (def.loss) {
    case 'mse':
      return 'meanSquaredError';
    case 'mae':
      return 'meanAbsoluteError';
    case 'binaryCrossentropy':
      return 'binaryCrossentropy';
    default:
      // Sparse targets are one-hot encoded before training, so both use the categorical loss.
      return 'categoricalCrossentropy';
  }
}

function scalar(t: tf.Scalar | tf.Scalar[]): number {
  const s = Array.isArray(t) ? t[0]! : t;
  const v = s.dataSync()[0]!;
  tf.dispose(t);
  return v;
}

function accuracy(model: tf.Sequential, x: tf.Tensor, y: Float32Array, binary: boolean): number {
  return tf.tidy(() => {
    const p = model.predict(x, { batchSize: 4096 }) as tf.Tensor;
    const pred = binary ? p.reshape([-1]).greater(0.5).toInt() : p.argMax(-1);
    const hits = pred.equal(tf.tensor1d(y, 'int32')).sum().dataSync()[0]!;
    return y.length === 0 ? 0 : hits / y.length;
  });
}

/**
 * Train a sequential model inside the enclave: validate everything first, split the rows with the
 * seed, standardise with training-split statistics, and fit with seeded shuffling and dropout.
 * The same inputs, seed and backend give bit-identical weights; the backend is the job's (conv
 * models: cpu; others: `p.backend`, default wasm) and never a fallback, so whether it diverges is
 * too. Raises E_INVALID_INPUT (params), E_MODEL_INVALID (definition, weights), E_DATA_INVALID
 * (dataset, or a loss that is not finite: divergence), E_UNAVAILABLE (the backend cannot start on
 * this node) and E_JOB_FAILED (any other engine failure, an allocation included).
 */
export async function trainModel(p: TrainParams): Promise<TrainResult> {
  checkParams(p);
  const { definition: def, shapes } = validateModelDefinition(p.definition);
  if (taskOf(def.loss) !== p.task)
    throw new FirnError(
      'E_MODEL_INVALID',
      `model definition $.loss: ${def.loss} does not fit task ${p.task}`,
      { details: { path: '$.loss' } },
    );
  const features = def.inputShape.reduce((a, b) => a * b, 1);
  const data: Dataset = { yCols: 1, ...p.data };
  if (data.cols !== features)
    throw new FirnError(
      'E_DATA_INVALID',
      `dataset has ${data.cols} feature columns, the model input ${JSON.stringify(def.inputShape)} needs ${features}`,
    );
  const classes = classCount(def, shapes);
  if (p.task === 'regression' && data.yCols !== shapes.outputShape[0])
    throw new FirnError(
      'E_DATA_INVALID',
      `dataset has ${data.yCols} targets per row, the model outputs ${shapes.outputShape[0]}`,
    );
  if (p.task === 'classification' && data.yCols !== 1)
    throw new FirnError('E_DATA_INVALID', 'classification targets must be one class index per row');
  checkDataset(data, p.task, p.task === 'classification' ? classes : undefined);
  const rng = createPrng(p.seed);
  const weights0 = p.initialWeights
    ? weightsFromSafetensors(p.initialWeights, shapes)
    : initialWeights(shapes, rng.fork());
  const { train, val } = splitDataset(data, p.validationSplit, rng.fork());
  const standardize = fitStandardizer(train.x, train.rows, train.cols);

  // tfjs's wasm backend has no Conv2DBackpropFilter kernel, so conv models train on the cpu backend.
  const hasConv = def.layers.some((l) => l.type === 'conv1d' || l.type === 'conv2d');
  const backend = await initTfBackend(hasConv ? 'cpu' : (p.backend ?? 'wasm'));
  const shuffleRng = rng.fork();
  const model = buildTfModel(def, shapes, weights0, rng.fork());
  const lr = p.learningRate ?? def.optimizer.learningRate;
  const optimizer = def.optimizer.type === 'adam' ? tf.train.adam(lr) : tf.train.sgd(lr);
  model.compile({ optimizer, loss: lossName(def) });
  const binary = def.loss === 'binaryCrossentropy';
  const shapeOf = (rows: number): number[] => [rows, ...def.inputShape];
  const xTrain = tf.tensor(applyStandardizer(train.x, train.cols, standardize), shapeOf(train.rows));
  const yTrain = targetTensor(train, def, classes);
  const xVal =
    val.rows > 0 ? tf.tensor(applyStandardizer(val.x, val.cols, standardize), shapeOf(val.rows)) : null;
  const yVal = val.rows > 0 ? targetTensor(val, def, classes) : null;
  const history: EpochEvent[] = [];
  let trainMs = 0;
  let best = { epoch: 0, valLoss: Number.POSITIVE_INFINITY };
  let stopped = false;
  try {
    for (let epoch = 1; epoch <= p.epochs; epoch++) {
      const t0 = performance.now();
      const idx = tf.tensor1d(Int32Array.from(shuffledIndices(train.rows, shuffleRng)), 'int32');
      const xs = tf.gather(xTrain, idx);
      const ys = tf.gather(yTrain, idx);
      const h = await model.fit(xs, ys, {
        epochs: 1,
        batchSize: p.batchSize,
        shuffle: false,
        verbose: 0,
        yieldEvery: 'never',
      });
      tf.dispose([idx, xs, ys]);
      trainMs += performance.now() - t0;
      const loss = Number(h.history['loss']?.[0]);
      // A function of the data, the definition, the params and the seed under the backend the job
      // decides (no fallback, tfBackend.ts): the requester's own, so typed and signed (1595, 1597).
      if (!Number.isFinite(loss))
        throw new FirnError(
          'E_DATA_INVALID',
          `training diverged at epoch ${epoch} (loss is not finite); lower the learning rate or rescale the data`,
          { details: { epoch, reason: 'diverged' } },
        );
      const valLoss =
        xVal && yVal ? scalar(model.evaluate(xVal, yVal, { batchSize: 4096 }) as tf.Scalar) : null;
      const metrics: EpochEvent['metrics'] = {};
      if (p.task === 'classification' && xVal) metrics.valAccuracy = accuracy(model, xVal, val.y, binary);
      const e: EpochEvent = { epoch, loss, valLoss, metrics };
      history.push(e);
      p.onEpoch?.(e);
      if (p.signal !== undefined) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (p.signal.aborted) break;
      }
      if (p.patience !== undefined && valLoss !== null) {
        if (valLoss < best.valLoss - (p.minDelta ?? 0)) best = { epoch, valLoss };
        else if (epoch - best.epoch >= p.patience) {
          stopped = epoch < p.epochs;
          break;
        }
      }
    }
    const ran = history.length;
    const trainLoss = scalar(model.evaluate(xTrain, yTrain, { batchSize: 4096 }) as tf.Scalar);
    const last = history[history.length - 1]!;
    const metrics: TrainMetrics = {
      backend,
      trainLoss,
      valLoss: last.valLoss,
      history,
      trainRows: train.rows,
      valRows: val.rows,
      epochs: ran,
      samplesPerSecond: (train.rows * ran) / (trainMs / 1000),
      trainSeconds: trainMs / 1000,
    };
    if (p.patience !== undefined)
      metrics.earlyStopping = {
        patience: p.patience,
        stopped,
        bestEpoch: best.epoch,
        bestValLoss: best.valLoss,
      };
    if (p.task === 'classification') {
      metrics.trainAccuracy = accuracy(model, xTrain, train.y, binary);
      if (last.metrics.valAccuracy !== undefined) metrics.valAccuracy = last.metrics.valAccuracy;
    }
    const trained = getTfWeights(model, shapes);
    const weights = weightsToSafetensors(trained, shapes);
    const preprocessing: Preprocessing = {
      format: 'firn.preprocessing/v1',
      task: p.task,
      features,
      standardize,
      ...(data.labels ? { labels: data.labels } : {}),
      ...(data.featureNames ? { featureNames: data.featureNames } : {}),
    };
    return { definition: def, weights, preprocessing, metrics, workUnits: train.rows * ran };
  } catch (e) {
    // Engine errors can quote tensor contents, so only a FirnError's own message passes through.
    if (e instanceof FirnError) throw e;
    throw new FirnError(
      'E_JOB_FAILED',
      `training failed in the ${backend} engine (${e instanceof Error ? e.name : 'error'})`,
    );
  } finally {
    tf.dispose([xTrain, yTrain, ...(xVal ? [xVal] : []), ...(yVal ? [yVal] : [])]);
    model.dispose();
    optimizer.dispose();
  }
}
