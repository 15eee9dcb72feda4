import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createPrng, encodeOnnxModel, loadOnnxModel, type OnnxNode, type OnnxTensor } from '@firn/ml';
import { reportBench } from './report.ts';

export interface MidSizeModel {
  path: string;
  bytes: Uint8Array;
  inputName: 'input';
  outputName: 'output';
  inputFeatures: number;
  outputFeatures: number;
  hidden: number;
}

const IN = 512;
const OUT = 512;

/**
 * Write a real ONNX MLP of about `sizeMB` megabytes (512 -> H -> H -> 512, ReLU between, softmax
 * output) with deterministic weights, for inference benchmarks. H is chosen so the float32
 * weights fill the requested size.
 */
export function makeMidSizeModel(
  sizeMB = 20,
  path = join(tmpdir(), `firn-mlp-${sizeMB}mb.onnx`),
): MidSizeModel {
  const params = (sizeMB * 1024 * 1024) / 4;
  // H^2 + (IN + OUT + 2) H + OUT ~= params
  const b = IN + OUT + 2;
  const hidden = Math.max(8, Math.round((-b + Math.sqrt(b * b + 4 * (params - OUT))) / 2));
  const rng = createPrng(20);
  const mat = (name: string, rows: number, cols: number): OnnxTensor => {
    const limit = Math.sqrt(6 / (rows + cols));
    const data = new Float32Array(rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = (rng.next() * 2 - 1) * limit;
    return { name, dims: [rows, cols], dtype: 'float', data };
  };
  const vec = (name: string, n: number): OnnxTensor => ({
    name,
    dims: [n],
    dtype: 'float',
    data: new Float32Array(n).fill(0.01),
  });
  const dims: [number, number][] = [
    [IN, hidden],
    [hidden, hidden],
    [hidden, OUT],
  ];
  const initializers: OnnxTensor[] = [];
  const nodes: OnnxNode[] = [];
  let cur = 'input';
  dims.forEach(([r, c], i) => {
    initializers.push(mat(`w${i}`, r, c), vec(`b${i}`, c));
    nodes.push(
      { opType: 'MatMul', inputs: [cur, `w${i}`], outputs: [`mm${i}`] },
      { opType: 'Add', inputs: [`mm${i}`, `b${i}`], outputs: [`z${i}`] },
    );
    cur = `z${i}`;
    if (i < dims.length - 1) {
      nodes.push({ opType: 'Relu', inputs: [cur], outputs: [`h${i}`] });
      cur = `h${i}`;
    }
  });
  nodes.push({
    opType: 'Softmax',
    inputs: [cur],
    outputs: ['output'],
    attributes: [{ name: 'axis', kind: 'int', value: -1 }],
  });
  const bytes = encodeOnnxModel({
    name: 'firn_bench_mlp',
    nodes,
    initializers,
    inputs: [{ name: 'input', elemType: 'float', shape: ['N', IN] }],
    outputs: [{ name: 'output', elemType: 'float', shape: ['N', OUT] }],
  });
  writeFileSync(path, bytes);
  return {
    path,
    bytes,
    inputName: 'input',
    outputName: 'output',
    inputFeatures: IN,
    outputFeatures: OUT,
    hidden,
  };
}

export interface PlainInferenceResult {
  modelBytes: number;
  hidden: number;
  loadMs: number;
  latencyMs: { batch: 1; p50: number; p95: number; iterations: number };
  throughput: { batch: number; rowsPerSecond: number; iterations: number };
  intraOpThreads: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** Plain (non-confidential) onnxruntime-node latency and throughput on the mid-size model. */
export async function runPlainBenchmark(
  opts: { sizeMB?: number; iterations?: number; batch?: number; intraOpThreads?: number } = {},
): Promise<PlainInferenceResult> {
  const m = makeMidSizeModel(opts.sizeMB ?? 20);
  const iterations = opts.iterations ?? 50;
  const batch = opts.batch ?? 64;
  const intraOpThreads = opts.intraOpThreads ?? 1;
  const t0 = performance.now();
  const model = await loadOnnxModel(m.bytes, { intraOpThreads });
  const loadMs = performance.now() - t0;
  const rng = createPrng(1);
  const input = (rows: number) => ({
    input: {
      type: 'float32' as const,
      dims: [rows, m.inputFeatures],
      data: Float32Array.from({ length: rows * m.inputFeatures }, () => rng.next()),
    },
  });
  const one = input(1);
  for (let i = 0; i < 3; i++) await model.run(one);
  const lat: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const s = performance.now();
    await model.run(one);
    lat.push(performance.now() - s);
  }
  lat.sort((a, b) => a - b);
  const many = input(batch);
  await model.run(many);
  const tIters = Math.max(5, Math.round(iterations / 5));
  const s = performance.now();
  for (let i = 0; i < tIters; i++) await model.run(many);
  const secs = (performance.now() - s) / 1000;
  await model.release();
  return {
    modelBytes: m.bytes.length,
    hidden: m.hidden,
    loadMs,
    latencyMs: { batch: 1, p50: percentile(lat, 0.5), p95: percentile(lat, 0.95), iterations },
    throughput: { batch, rowsPerSecond: (batch * tIters) / secs, iterations: tIters },
    intraOpThreads,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await runPlainBenchmark();
  console.log(
    `plain onnxruntime-node, MLP 512-${r.hidden}-${r.hidden}-512, ${(r.modelBytes / 1024 / 1024).toFixed(1)} MiB, ${r.intraOpThreads} thread(s)`,
  );
  console.log(`  load ${r.loadMs.toFixed(1)} ms`);
  console.log(`  batch 1 latency p50 ${r.latencyMs.p50.toFixed(2)} ms, p95 ${r.latencyMs.p95.toFixed(2)} ms`);
  console.log(`  batch ${r.throughput.batch} throughput ${r.throughput.rowsPerSecond.toFixed(0)} rows/s`);
  // Plain onnxruntime alone has no goal of its own: its headline is the batch-1 p50 that
  // confidentialInference compares against (goal 0 = any positive figure is a run that worked).
  reportBench('inference', r, [{ name: 'plain_batch1_p50_ms', value: r.latencyMs.p50, cmp: '>=', goal: 0 }]);
}
