import { accessSync, constants, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { AttestationPolicy } from '@firn/attestation';
import type { FirnDeployment } from '@firn/chain';
import { FirnError, type Hex, InvalidInputError, isFirnError } from '@firn/core';
import { parseCsv, sniffDelimiter, type Task, taskOf, validateModelDefinition } from '@firn/ml/formats';
import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { cliErrorBody, exitCodeOf } from '../output.ts';
import { assertWritableNew, namingFile, readKemKeyPair, writeFilesAtomically } from './infer.ts';
import { journalPosts, reserveResultKey } from '../jobJournal.ts';
import { journalOptions } from '../rpcUrl.ts';
import {
  chainFlags,
  guardJobInFlight,
  jobListCommand,
  jobReclaimCommand,
  jobResultCommand,
} from '../jobInterrupt.ts';
import { newResultKem, wipe } from '../resultKem.ts';
// The enclave's own CSV sniffing, so the local pre-check reads the file exactly as the enclave will.
import type { TrainingReport } from '@firn/enclave';
import { type DevnetStateFile, devnetRoots, type JobPostedAt, type PostJobSent } from '@firn/client';
import { privateKeyToAccount } from 'viem/accounts';
import { type ChainArgs, etherArg, firstPartyNodeChoice, readKey, resolveChain } from '../chainArgs.ts';
import { MAX_OUTPUT_HELP, maxOutputArg } from '../sizeArgs.ts';
import { loadPolicy, loadSimRoots } from '../policyArgs.ts';
import { padUploads } from '../padUpload.ts';
import { readUserFileSync } from '../readUserFile.ts';

/** What `firn train` reads from its command line (commander's camel-cased option names). */
export interface TrainOptions extends ChainArgs {
  data: string;
  out: string;
  target?: string;
  task?: string;
  hidden?: string;
  model?: string;
  weights?: string;
  epochs?: string;
  batchSize?: string;
  lr?: string;
  seed?: string;
  validationSplit?: string;
  patience?: string;
  kemKey?: string;
  claimTimeout?: string;
  maxNodes?: string;
  header?: string;
  delimiter?: string;
  proof?: string;
  node?: string;
  keyFile?: string;
  policy?: string;
  simRoot?: string;
  escrow?: string;
  /** `--max-output`: the job's declared output bound (a size, e.g. 64MiB; decision 1690). */
  maxOutput?: string;
  precheck?: boolean;
  /** false (`--no-pad`): seal the files at their exact sizes (default: padded, decision 1855). */
  pad?: boolean;
  json?: boolean;
  /** More RPC endpoints that must agree with --rpc on every registry read. */
  alsoRpc?: string[];
}

export interface TrainJobInput {
  role: string;
  bytes: Uint8Array;
  contentType: string;
}

/** The subset of the client SDK's runJob options that `firn train` sets. */
export interface TrainRunJobOptions {
  rpcUrl: string;
  deployment: FirnDeployment;
  requesterKey: Hex;
  node?: string;
  policy: AttestationPolicy;
  roots?: { simulated?: Uint8Array[] };
  gpuRoots?: { simulated?: Uint8Array[] };
  kind: 'training';
  inputs: TrainJobInput[];
  params: Record<string, unknown>;
  escrow: bigint;
  extraRpcUrls?: string[];
  /** Seconds a node's claim lasts; a node lost while holding the job is replaced after it. */
  claimTimeoutSeconds?: number;
  /** Nodes to try in all when one is lost (runJob's maxNodes). */
  maxNodes?: number;
  requesterKem?: { privateKey: Uint8Array; publicKey: Uint8Array };
  /** Called as soon as a postJob transaction is sent, before its receipt (runJob's onPostSent). */
  onPostSent?: (tx: PostJobSent) => void;
  /** Called with each signed postJob transaction before it is sent (runJob's onPostSigned). */
  onPostSigned?: (tx: PostJobSent) => void;
  /** Called once the job is posted, with where (runJob's onPosted; absent from a test double). */
  onPosted?: (jobId: Hex, posted?: JobPostedAt) => void;
  onProgress?: (event: Record<string, unknown>) => void;
}

export interface TrainRunJobResult {
  jobId: Hex;
  node: { endpoint: string; enclaveId: Hex; enclaveAddress: Hex; measurement: Hex };
  outputs: { role: string; contentType: string; bytes: Uint8Array }[];
  proof: unknown;
  proofCheck: { ok: boolean; reasons: string[] };
}

export type TrainRunJob = (o: TrainRunJobOptions) => Promise<TrainRunJobResult>;

/** A writable stream as far as progress rendering needs one. */
export interface OutStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface TrainDeps {
  runJob: TrainRunJob;
  stdout: OutStream;
  stderr: OutStream;
}

const MAX_DATA_BYTES = 512 * 1024 * 1024;
const MAX_SMALL_FILE = 256 * 1024 * 1024;
/** The cap on a `--model` definition file (JSON), bytes. */
const MAX_MODEL_DEFINITION_BYTES = 1 << 20;

/** Files written to MODEL_DIR, by output role. */
export const MODEL_DIR_FILES: Record<string, string> = {
  weights: 'weights.safetensors',
  preprocessing: 'preprocessing.json',
  metrics: 'metrics.json',
  model: 'model.json',
  onnx: 'model.onnx',
};

function int(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new InvalidInputError(`${name} must be an integer in ${min}..${max}`);
  return n;
}

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidInputError(`${name} must be a number`);
  return n;
}

/** `--target`: a zero-based index (digits), `last`, or a column name. */
export function parseTargetArg(v: string | undefined): string | number {
  if (v === undefined || v === 'last') return 'last';
  return /^\d+$/.test(v) ? Number(v) : v;
}

/** `--hidden 32,16` as layer sizes. */
export function parseHiddenArg(v: string): number[] {
  const parts = v.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 4096))
    throw new InvalidInputError('--hidden must be comma-separated layer sizes in 1..4096, e.g. 32,16');
  return parts.map(Number);
}

export interface TrainPlan {
  task: Task;
  params: Record<string, unknown>;
  inputs: TrainJobInput[];
}

/**
 * Turn the command line into the job's params and inputs, reading the files, and (unless
 * --no-precheck) parse the CSV locally as the enclave will, so bad data fails before any escrow.
 */
export function planTraining(o: TrainOptions): TrainPlan {
  if (o.hidden !== undefined && o.model !== undefined)
    throw new InvalidInputError('give --hidden or --model, not both');
  if (o.weights !== undefined && o.model === undefined)
    throw new InvalidInputError('--weights needs --model (the definition the weights belong to)');
  const inputs: TrainJobInput[] = [];
  const data = readUserFileSync(o.data, '--data', MAX_DATA_BYTES);
  const isSafetensors = o.data.toLowerCase().endsWith('.safetensors');
  inputs.push({
    role: 'dataset',
    bytes: data,
    contentType: isSafetensors ? 'application/safetensors' : 'text/csv',
  });
  let modelTask: Task | undefined;
  if (o.model !== undefined) {
    const bytes = readUserFileSync(o.model, '--model', MAX_MODEL_DEFINITION_BYTES);
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      throw new FirnError('E_MODEL_INVALID', `--model ${o.model}: model definition is not valid JSON`);
    }
    modelTask = namingFile('--model', o.model, () => taskOf(validateModelDefinition(json).definition.loss));
    inputs.push({ role: 'model', bytes, contentType: 'application/json' });
  }
  if (o.weights !== undefined)
    inputs.push({
      role: 'weights',
      bytes: readUserFileSync(o.weights, '--weights', MAX_SMALL_FILE),
      contentType: 'application/safetensors',
    });
  if (o.task !== undefined && o.task !== 'classification' && o.task !== 'regression')
    throw new InvalidInputError('--task must be classification or regression');
  const task: Task = (o.task as Task | undefined) ?? modelTask ?? 'classification';
  if (modelTask !== undefined && modelTask !== task)
    throw new FirnError('E_MODEL_INVALID', `the model's loss is for ${modelTask}, --task says ${task}`);
  const header =
    o.header === undefined || o.header === 'auto'
      ? 'auto'
      : o.header === 'yes'
        ? true
        : o.header === 'no'
          ? false
          : null;
  if (header === null) throw new InvalidInputError('--header must be auto, yes or no');
  if (o.delimiter !== undefined && o.delimiter.length !== 1)
    throw new InvalidInputError('--delimiter must be one character');
  const target = parseTargetArg(o.target);
  const params: Record<string, unknown> = { task, target };
  if (header !== 'auto') params['header'] = header;
  if (o.delimiter !== undefined) params['delimiter'] = o.delimiter;
  if (o.hidden !== undefined) params['hidden'] = parseHiddenArg(o.hidden);
  const set = (k: string, v: number | undefined) => {
    if (v !== undefined) params[k] = v;
  };
  set('epochs', int(o.epochs, '--epochs', 1, 10_000));
  set('batchSize', int(o.batchSize, '--batch-size', 1, 65_536));
  set('learningRate', num(o.lr, '--lr'));
  set('seed', int(o.seed, '--seed', 0, 2 ** 32 - 1) ?? 1);
  set('validationSplit', num(o.validationSplit, '--validation-split'));
  set('patience', int(o.patience, '--patience', 1, 10_000));
  const lr = params['learningRate'] as number | undefined;
  if (lr !== undefined && !(lr > 0 && lr <= 10)) throw new InvalidInputError('--lr must be in (0, 10]');
  const vs = params['validationSplit'] as number | undefined;
  if (vs !== undefined && !(vs >= 0 && vs < 1))
    throw new InvalidInputError('--validation-split must be in [0, 1)');
  if (params['patience'] !== undefined && vs === 0)
    throw new InvalidInputError(
      '--patience needs --validation-split above 0 (it watches the validation loss)',
    );
  if (o.precheck !== false && !isSafetensors)
    namingFile('--data', o.data, () =>
      parseCsv(data, { task, header, target, delimiter: o.delimiter ?? sniffDelimiter(data) }),
    );
  return { task, params, inputs };
}

/**
 * A directory `mkdir -p` can create: its nearest existing ancestor is a writable directory.
 * E_INVALID_INPUT / E_FORBIDDEN naming the flag and the ancestor, before any payment.
 */
export function assertCreatable(dir: string, flag: string): void {
  let p = dir;
  while (!existsSync(p)) {
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  if (!statSync(p).isDirectory())
    throw new FirnError('E_INVALID_INPUT', `${flag} ${dir}: ${p} is a file, not a directory`);
  try {
    accessSync(p, constants.W_OK);
  } catch {
    throw new FirnError('E_FORBIDDEN', `${flag} ${dir}: ${p} is not writable`);
  }
}

/** A README for MODEL_DIR: what each file is and how to run the exported model. */
export function modelDirReadme(report: TrainingReport, jobId: Hex): string {
  const f = report.featureNames;
  const lines = [
    '# Trained model',
    '',
    `Trained confidentially by firn job ${jobId} (${report.task}, ${report.params.epochs} epochs, backend ${report.backend}).`,
    '',
    '| file | content |',
    '| --- | --- |',
    '| weights.safetensors | trained weights, tensors `layers.<i>.<kind>` (F32) |',
    '| preprocessing.json | `firn.preprocessing/v1`: feature standardisation (training split), labels |',
    '| model.json | the `firn.sequential/v1` definition that was trained |',
    '| metrics.json | the training report: hyperparameters, per-epoch history, held-out metrics |',
    ...(report.onnx.exported
      ? ['| model.onnx | ONNX graph (IR 8, opset 13) with the standardisation inside |']
      : []),
    '| proof.json | the Work Proof signed by the enclave (unless written elsewhere with --proof) |',
    '',
  ];
  if (report.onnx.exported) {
    lines.push(
      '## Running model.onnx',
      '',
      `Input \`${report.onnx.input}\`: float32 \`[N, ${f.length}]\`, raw (unstandardised) feature values, one row per sample, columns in this order:`,
      '',
      ...f.map((n, i) => `${i}. ${n}`),
      '',
      `Output \`${report.onnx.output}\`: ${report.onnx.outputMeaning}.`,
      '',
    );
    if (report.labels)
      lines.push('Labels by output column:', '', ...report.labels.map((l, i) => `${i}. ${l}`), '');
    lines.push(
      'Tensor JSON for `firn infer`:',
      '',
      '```json',
      `{"${report.onnx.input}": {"dims": [1, ${f.length}], "type": "float32", "data": [${f.map(() => '0').join(', ')}]}}`,
      '```',
      '',
    );
  } else lines.push(`No ONNX export: ${report.onnx.reason}`, '');
  return lines.join('\n');
}

/** The model dir's files (decrypted outputs, a README, the proof) and the report, in memory. */
export function modelDirFiles(
  dir: string,
  outputs: TrainRunJobResult['outputs'],
  proof: unknown,
  jobId: Hex,
  proofPath?: string,
): { files: { path: string; bytes: Uint8Array | string }[]; report: TrainingReport } {
  const files: { path: string; bytes: Uint8Array | string }[] = [];
  let report: TrainingReport | undefined;
  for (const o of outputs) {
    const name = MODEL_DIR_FILES[o.role];
    if (name === undefined) continue;
    files.push({ path: join(dir, name), bytes: o.bytes });
    if (o.role === 'metrics') report = metricsReport(o.bytes);
  }
  if (!report) throw new FirnError('E_JOB_FAILED', 'the training job returned no metrics report');
  files.push({ path: join(dir, 'README.md'), bytes: modelDirReadme(report, jobId) });
  files.push({
    path: proofPath ?? join(dir, 'proof.json'),
    bytes: `${JSON.stringify(proof, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`,
  });
  return { files, report };
}

/**
 * The training job's metrics output as a JSON object. Throws E_JOB_FAILED when it is not one;
 * the message never quotes the bytes (they are the requester's plaintext result).
 */
function metricsReport(bytes: Uint8Array): TrainingReport {
  let o: unknown;
  try {
    o = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    o = undefined;
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw new FirnError(
      'E_JOB_FAILED',
      'the training job returned a metrics report that is not a JSON object',
    );
  return o as TrainingReport;
}

/** Write the decrypted outputs, a README and the proof, all or nothing; returns the paths written. */
export function writeModelDir(
  dir: string,
  outputs: TrainRunJobResult['outputs'],
  proof: unknown,
  jobId: Hex,
  proofPath?: string,
): { files: string[]; report: TrainingReport } {
  const { files, report } = modelDirFiles(dir, outputs, proof, jobId, proofPath);
  mkdirSync(dir, { recursive: true });
  // Nothing that appeared in the folder meanwhile is replaced (decision 1666).
  writeFilesAtomically(files, {
    recover: `job ${jobId}'s result stays fetchable: firn job result ${jobId} --out <a new folder>`,
  });
  return { files: files.map((f) => f.path), report };
}

function fmt(v: unknown, digits = 4): string {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '-';
}

/** Off a terminal, at most this many epoch lines are printed (evenly spaced, the last always). */
export const MAX_PLAIN_EPOCH_LINES = 10;

/**
 * Progress display for the job's events. On a terminal: one `cli-progress` bar redrawn in place
 * (epoch, loss, val_loss, val_acc). Elsewhere (a pipe, a CI log): a bounded summary — at most
 * MAX_PLAIN_EPOCH_LINES epoch lines, evenly spaced, plus the last — never a line per epoch.
 * Reassignment events (`stage: 'node-lost' | 'reassigning'`) are always printed as lines, so a
 * lost node is visible; other events are ignored.
 */
export function createProgressRenderer(out: OutStream): {
  onEvent(e: Record<string, unknown>): void;
  done(): void;
} {
  let bar: SingleBar | undefined;
  let lostShown = false;
  const line = (text: string) => {
    if (bar) {
      bar.stop();
      bar = undefined;
    }
    out.write(`${text}\n`);
  };
  return {
    onEvent(e) {
      if (e['stage'] === 'node-lost') {
        if (!lostShown)
          line(
            `node ${String(e['node'])} lost (${String(e['reason'])}); waiting until its claim lapses at ${new Date(Number(e['claimLapsesAt']) * 1000).toISOString()}`,
          );
        lostShown = true;
        return;
      }
      if (e['stage'] === 'reassigning') {
        lostShown = false;
        line(
          `job ${String(e['lostJobId'])} ${e['reclaimed'] ? 'reclaimed' : 'not reclaimed'}; retrying on another node (attempt ${String(e['attempt'])} of ${String(e['maxNodes'])})`,
        );
        return;
      }
      if (e['type'] !== 'epoch') return;
      const epoch = Number(e['epoch']);
      const epochs = Number(e['epochs']);
      const acc =
        typeof e['valAccuracy'] === 'number' ? ` val_acc ${(100 * e['valAccuracy']).toFixed(1)}%` : '';
      const text = `loss ${fmt(e['loss'])} val_loss ${fmt(e['valLoss'])}${acc}`;
      if (out.isTTY) {
        if (!bar) {
          bar = new SingleBar(
            {
              stream: out as unknown as NodeJS.WritableStream,
              format: 'epoch {value}/{total} [{bar}] {text}',
              barsize: 24,
              hideCursor: false,
              clearOnComplete: false,
              noTTYOutput: false,
              fps: 10,
            },
            Presets.legacy,
          );
          bar.start(epochs, 0, { text });
        }
        bar.update(epoch, { text });
        return;
      }
      const every = Math.max(1, Math.ceil(epochs / MAX_PLAIN_EPOCH_LINES));
      if (epoch % every === 0 || epoch === epochs || epoch === 1)
        out.write(`epoch ${epoch}/${epochs} ${text}\n`);
    },
    done() {
      if (bar) bar.stop();
      bar = undefined;
    },
  };
}

/** Human summary after a run. */
export function summaryLines(report: TrainingReport, dir: string, proofOk: boolean, jobId: Hex): string[] {
  const h = report.heldOut;
  const quality =
    h.accuracy !== undefined
      ? `held-out accuracy ${(100 * h.accuracy).toFixed(2)}% on ${h.rows} rows`
      : h.rmse !== undefined
        ? `held-out RMSE ${fmt(h.rmse)} on ${h.rows} rows`
        : `held-out loss ${fmt(h.loss)} on ${h.rows} rows`;
  return [
    `trained ${report.train.rows} rows x ${report.epochsRun ?? report.params.epochs} epochs on ${report.backend}: ${quality}`,
    ...(report.earlyStopping?.stopped
      ? [
          `  stopped early after ${report.epochsRun} of ${report.params.epochs} epochs (best val_loss ${fmt(report.earlyStopping.bestValLoss)} at epoch ${report.earlyStopping.bestEpoch})`,
        ]
      : []),
    `  ${Math.round(report.samplesPerSecond)} samples/s, ${report.parameterCount} parameters, work units ${report.workUnits}`,
    `  wrote ${dir} (${Object.values(MODEL_DIR_FILES).join(', ')}, README.md)`,
    `  job ${jobId}: proof ${proofOk ? 'verified' : 'DID NOT VERIFY'}`,
  ];
}

/**
 * The core of `firn train`: plan the job, resolve the network, run it through the SDK, render
 * progress, write MODEL_DIR. Returns the exit code (README "Exit codes": 0 ok, 2 the proof did not
 * verify and nothing was written, otherwise exitCodeOf the error).
 */
export async function runTrain(o: TrainOptions, deps: TrainDeps): Promise<number> {
  const json = Boolean(o.json);
  const progressOut = json ? deps.stderr : deps.stdout;
  const progress = createProgressRenderer(progressOut);
  try {
    const plan = planTraining(o);
    const escrow = etherArg(o.escrow ?? '0.01', '--escrow');
    // Checked with the other flags, before anything is sealed or posted (decision 1690).
    const maxOutputBytes = maxOutputArg(o.maxOutput);
    const claimTimeout = int(o.claimTimeout, '--claim-timeout', 10, 7 * 24 * 3600);
    const maxNodes = int(o.maxNodes, '--max-nodes', 1, 16);
    // Before any escrow: never write over the user's files (README.md, proof.json, a previous model).
    const outDir = resolve(o.out);
    if (existsSync(outDir) && (!statSync(outDir).isDirectory() || readdirSync(outDir).length > 0))
      throw new FirnError(
        'E_CONFLICT',
        `${outDir} already exists and is not an empty directory; pass a new MODEL_DIR`,
      );
    if (o.proof && existsSync(o.proof))
      throw new FirnError('E_CONFLICT', `${resolve(o.proof)} already exists; pass another --proof path`);
    // And that they can be written at all, before any escrow is paid.
    assertCreatable(outDir, '--out');
    if (o.proof) assertWritableNew(resolve(o.proof), '--proof');
    const requesterKem = o.kemKey ? readKemKeyPair(o.kemKey) : undefined;
    const chain = await resolveChain(o);
    const devnet = chain.devnet as
      | { accounts?: { requester?: { privateKey?: string } }; simulatedRootPem?: string }
      | undefined;
    const envKey = o.keyFile !== undefined || process.env['FIRN_REQUESTER_KEY'] !== undefined;
    const requesterKey =
      !envKey && devnet?.accounts?.requester?.privateKey
        ? (devnet.accounts.requester.privateKey as Hex)
        : readKey({ ...(o.keyFile ? { keyFile: o.keyFile } : {}), env: 'FIRN_REQUESTER_KEY' });
    const policy = loadPolicy(o.policy, devnet ? 'dev' : 'production');
    const pinned = devnet?.simulatedRootPem
      ? devnetRoots(devnet as DevnetStateFile)
      : { roots: {}, gpuRoots: {} };
    const roots = o.simRoot !== undefined ? loadSimRoots(o.simRoot) : pinned.roots;
    const journal = {
      ...journalOptions(o),
      data: resolve(o.data),
      out: outDir,
      ...(o.model ? { model: resolve(o.model) } : {}),
      ...(o.weights ? { weights: resolve(o.weights) } : {}),
      ...(o.proof ? { proof: resolve(o.proof) } : {}),
    };
    // Without --kem-key the result key is derived from the requester key and a per-job salt kept in
    // the journal, so an interrupted run loses nothing: `firn job result` derives it again (1630).
    const derived = requesterKem ? undefined : newResultKem(requesterKey);
    // The salt is on disk before any escrow is sent, or nothing is paid (decision 1747).
    const reservation = derived
      ? reserveResultKey({
          command: 'train',
          options: journal,
          resultKem: derived.record,
          kemFlag: '--kem-key',
        })
      : undefined;
    const guard = guardJobInFlight({
      chain: { rpcUrl: chain.rpcUrl, deployment: chain.deployment, requesterKey },
      resultCommand: (id) =>
        jobResultCommand(id, { ...chainFlags(o), ...(o.kemKey ? { kemKey: o.kemKey } : {}), out: outDir }),
      reclaimCommand: (id) => jobReclaimCommand(id, chainFlags(o)),
      listCommand: (requester) => jobListCommand(requester, chainFlags(o)),
      stderr: {
        write: (s: string) => {
          progress.done();
          return deps.stderr.write(s);
        },
      },
    });
    const post = journalPosts({
      command: 'train',
      options: journal,
      deployment: chain.deployment,
      requester: privateKeyToAccount(requesterKey).address,
      ...(derived ? { resultKem: derived.record } : {}),
      ...(reservation ? { reservation } : {}),
      guard,
      warn: (line) => deps.stderr.write(`${line}\n`),
    });
    let r: Awaited<ReturnType<TrainRunJob>>;
    try {
      r = await deps.runJob({
        rpcUrl: chain.rpcUrl,
        deployment: chain.deployment,
        requesterKey,
        ...(o.node ? { node: o.node } : {}),
        ...firstPartyNodeChoice(chain, o.node),
        policy,
        roots,
        gpuRoots: pinned.gpuRoots,
        kind: 'training',
        inputs: padUploads(
          plan.inputs,
          o.pad !== false,
          (role) =>
            role === 'dataset'
              ? MAX_DATA_BYTES
              : role === 'model'
                ? MAX_MODEL_DEFINITION_BYTES
                : MAX_SMALL_FILE,
          (line) => deps.stderr.write(`${line}\n`),
        ),
        params: plan.params,
        escrow,
        ...(maxOutputBytes === undefined ? {} : { maxOutputBytes }),
        ...(o.alsoRpc && o.alsoRpc.length > 0 ? { extraRpcUrls: o.alsoRpc } : {}),
        ...(claimTimeout !== undefined ? { claimTimeoutSeconds: claimTimeout } : {}),
        ...(maxNodes !== undefined ? { maxNodes } : {}),
        requesterKem: requesterKem ?? derived!.kem,
        onPostSigned: post.onPostSigned,
        onPostSent: post.onPostSent,
        onPosted: post.onPosted,
        onProgress: (e) => progress.onEvent(e),
      });
    } catch (e) {
      // A post whose transaction was never mined leaves no pending entry (decision 1685).
      post.failed(e);
      throw e;
    } finally {
      // The result is in memory (or the run failed): from here a signal is the writer's (1542).
      guard.release();
      wipe(derived?.kem);
    }
    progress.done();
    const dir = resolve(o.out);
    const proofPath = o.proof ? resolve(o.proof) : undefined;
    // Nothing is written unless the proof verifies: unverified weights never reach the disk.
    const { files, report } = r.proofCheck.ok
      ? writeModelDir(dir, r.outputs, r.proof, r.jobId, proofPath)
      : { files: [], report: modelDirFiles(dir, r.outputs, r.proof, r.jobId, proofPath).report };
    if (json)
      writeJson(deps.stdout, {
        jobId: r.jobId,
        node: r.node,
        modelDir: dir,
        files: files.map((f) => basename(f)),
        proof: { path: o.proof ? resolve(o.proof) : join(dir, 'proof.json'), ...r.proofCheck },
        report,
      });
    else deps.stdout.write(`${summaryLines(report, dir, r.proofCheck.ok, r.jobId).join('\n')}\n`);
    if (!r.proofCheck.ok) {
      deps.stderr.write(
        `error: E_PROOF_INVALID: the Work Proof did not verify: ${r.proofCheck.reasons.join('; ')}\n`,
      );
      return 2;
    }
    return 0;
  } catch (e) {
    progress.done();
    const body = cliErrorBody(e);
    if (!isFirnError(e) && process.env['FIRN_DEBUG'] === '1') deps.stderr.write(`${(e as Error)?.stack}\n`);
    if (json) writeJson(deps.stdout, { error: body });
    else deps.stderr.write(`error: ${body.code}: ${body.message}\n`);
    return exitCodeOf(e);
  }
}

function writeJson(out: OutStream, v: unknown): void {
  out.write(`${JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2)}\n`);
}

export function registerTrain(program: Command, runJob?: TrainRunJob): void {
  program
    .command('train')
    .description(
      'train a model confidentially on a firn node; writes weights, preprocessing, report and ONNX',
    )
    .requiredOption('--data <file>', 'training data: CSV (header auto-detected) or safetensors (x, y)')
    .requiredOption('--out <dir>', 'MODEL_DIR for the trained model')
    .option('--target <column>', 'target column: name, zero-based index, or last', 'last')
    .option('--task <task>', 'classification | regression (default: from --model, else classification)')
    .option('--hidden <sizes>', 'hidden layer sizes of an MLP, e.g. 32,16 (default 64,32)')
    .option('--model <file>', 'model definition JSON (firn.sequential/v1) instead of --hidden')
    .option('--weights <file>', 'initial weights (safetensors) for --model')
    .option('--epochs <n>', 'epochs (default: scaled to the data size)')
    .option('--batch-size <n>', 'batch size (default 32, 128 from 20k rows)')
    .option('--lr <x>', 'learning rate (default: the model optimizer, 0.01 for --hidden)')
    .option('--seed <n>', 'seed for initialisation, split, shuffling and dropout', '1')
    .option('--validation-split <f>', 'fraction of rows held out for validation (default 0.1)')
    .option('--patience <n>', 'early stopping: stop after n epochs without a validation-loss improvement')
    .option(
      '--claim-timeout <s>',
      'seconds a node may hold the job before its claim lapses and another node takes it (default 900)',
    )
    .option('--max-nodes <n>', 'nodes to try in all when a node is lost while running the job (default 3)')
    .option('--header <mode>', 'CSV header: auto | yes | no', 'auto')
    .option('--delimiter <c>', 'CSV delimiter (default: detected)')
    .option('--proof <file>', 'where to write the Work Proof JSON (default MODEL_DIR/proof.json)')
    .option(
      '--kem-key <file>',
      'KEM key file (firn artifact keygen) to seal the outputs to (else one derived from the requester key, reopened by firn job result)',
    )
    .option('--rpc <url>', 'JSON-RPC URL')
    .option('--market <address>', 'job market contract')
    .option('--registry <address>', 'registry contract')
    .option('--deployment <file>', 'deployment JSON')
    .option('--devnet <file>', 'devnet state file (RPC, contracts, requester account, simulated root)')
    .option('--node <url>', 'node endpoint (default: an Active node from the registry)')
    .option(
      '--key-file <file>',
      'requester private key file (else FIRN_REQUESTER_KEY, or the devnet requester)',
    )
    .option('--policy <policy>', 'attestation policy: dev | production | FILE (default: dev with --devnet)')
    .option('--sim-root <file>', 'pinned simulated TEE root (PEM)')
    .option('--escrow <eth>', 'escrow paid for the job, in ether', '0.01')
    .option('--max-output <size>', MAX_OUTPUT_HELP)
    .option(
      '--also-rpc <url...>',
      'more RPC endpoints of the same chain; every registry read must agree on all of them at one block',
    )
    .option('--no-precheck', 'skip the local CSV check before posting the job')
    .option(
      '--no-pad',
      'seal the data, model and weights at their exact sizes (default: padded to a Padmé bucket, so the host cannot tell which known dataset was sent; at most 12 % more bytes)',
    )
    .option('--json', 'print the final report as JSON')
    .action(async (o: TrainOptions) => {
      const run: TrainRunJob = runJob ?? (await import('@firn/client')).runJob;
      process.exitCode = await runTrain(o, { runJob: run, stdout: process.stdout, stderr: process.stderr });
    });
}
