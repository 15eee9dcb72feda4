import { readFileSync } from 'node:fs';
import { DEV_POLICY } from '@firn/attestation';
import { type Hex, hexBytes, sharedPath } from '@firn/core';
import { createPrng, shuffledIndices } from '@firn/ml/formats';
import { deploymentFromState, devnetRoots, type DevnetStateFile, runJob } from '@firn/client';

export interface TrainingDemoResult {
  dataset: string;
  trainJobId: Hex;
  inferenceJobId: Hex;
  /** Per-epoch training loss as streamed (encrypted) from the enclave. */
  losses: number[];
  /** Accuracy of the exported ONNX model, run by confidential inference on rows the node never trained on. */
  heldOutAccuracy: number;
  heldOutRows: number;
  proofsVerified: boolean;
}

const DATASET = 'banknote_authentication.csv';

/** A loss curve as text: one bar per epoch, scaled to the largest loss. */
export function lossChart(losses: number[], width = 40): string[] {
  const max = Math.max(...losses.filter(Number.isFinite), Number.EPSILON);
  return losses.map((l, i) => {
    const n = Math.max(0, Math.min(width, Math.round((width * l) / max)));
    return `  ${String(i + 1).padStart(3)} ${l.toFixed(4)} ${'#'.repeat(n)}`;
  });
}

/** Split CSV lines with a seeded shuffle: the requester keeps `fraction` of them to test with. */
export function splitCsvLines(
  text: string,
  fraction: number,
  seed: number,
): { train: string[]; test: string[] } {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const idx = shuffledIndices(lines.length, createPrng(seed));
  const nTest = Math.round(lines.length * fraction);
  const pick = (a: Uint32Array) => Array.from(a, (i) => lines[i]!);
  return { test: pick(idx.subarray(0, nTest)), train: pick(idx.subarray(nTest)) };
}

/**
 * Devnet demo of confidential training: train an MLP on 80% of the banknote dataset inside an
 * enclave (sealed dataset, encrypted per-epoch progress, sealed weights and ONNX back), print the
 * loss curve, then run the exported ONNX model by confidential inference on the 20% the
 * requester held back and print its accuracy.
 */
export async function runTrainingDemo(
  state: DevnetStateFile,
  log: (line: string) => void,
): Promise<TrainingDemoResult> {
  const { train, test } = splitCsvLines(readFileSync(sharedPath('datasets', DATASET), 'utf8'), 0.2, 11);
  const common = {
    rpcUrl: state.rpcUrl,
    deployment: deploymentFromState(state),
    requesterKey: state.accounts.requester.privateKey,
    policy: DEV_POLICY,
    ...devnetRoots(state),
    escrow: 10n ** 16n,
    ...(state.requesterKem
      ? {
          requesterKem: {
            privateKey: hexBytes(state.requesterKem.privateKey, 'requesterKem.privateKey', 32),
            publicKey: hexBytes(state.requesterKem.publicKey, 'requesterKem.publicKey', 32),
          },
        }
      : {}),
  };
  log(
    `training: ${DATASET}, ${train.length} rows sealed to the enclave (${test.length} rows held back to test)`,
  );
  const losses: number[] = [];
  const t = await runJob({
    ...common,
    kind: 'training',
    inputs: [{ role: 'dataset', bytes: new TextEncoder().encode(train.join('\n')), contentType: 'text/csv' }],
    params: {
      task: 'classification',
      hidden: [16, 8],
      epochs: 20,
      batchSize: 32,
      seed: 7,
      validationSplit: 0.2,
    },
    onProgress: (e) => {
      if (e['type'] !== 'epoch') return;
      const loss = Number(e['loss']);
      losses.push(loss);
      const acc =
        typeof e['valAccuracy'] === 'number' ? ` val acc ${(100 * e['valAccuracy']).toFixed(1)}%` : '';
      log(`  epoch ${String(e['epoch']).padStart(2)}/${e['epochs']} loss ${loss.toFixed(4)}${acc}`);
    },
  });
  log('loss curve (encrypted progress, decrypted by the requester):');
  for (const line of lossChart(losses)) log(line);
  const onnx = t.outputs.find((o) => o.role === 'onnx');
  if (!onnx) throw new Error('the training job returned no ONNX model');
  log(
    `training job ${t.jobId}: proof ${t.proofCheck.ok ? 'verified' : `NOT verified (${t.proofCheck.reasons.join('; ')})`}`,
  );

  // Raw feature rows in file order; the exported graph standardises them itself.
  const rows = test.map((l) => l.split(',').map(Number));
  const features = rows[0]!.length - 1;
  const x = rows.flatMap((r) => r.slice(0, features));
  const input = JSON.stringify({ input: { dims: [rows.length, features], type: 'float32', data: x } });
  const inf = await runJob({
    ...common,
    kind: 'inference',
    inputs: [
      { role: 'model', bytes: onnx.bytes, contentType: 'application/onnx' },
      { role: 'input', bytes: new TextEncoder().encode(input), contentType: 'application/json' },
    ],
    params: {},
  });
  const outBytes = inf.outputs.find((o) => o.role === 'output')?.bytes;
  if (!outBytes) throw new Error('the inference job returned no output');
  const out = (
    JSON.parse(new TextDecoder().decode(outBytes)) as Record<string, { dims: number[]; data: number[] }>
  )['output']!;
  const classes = out.dims[1]!;
  let hits = 0;
  rows.forEach((r, i) => {
    const p = out.data.slice(i * classes, (i + 1) * classes);
    if (p.indexOf(Math.max(...p)) === r[features]) hits++;
  });
  const accuracy = hits / rows.length;
  log(
    `exported ONNX model, confidential inference job ${inf.jobId}: held-out accuracy ${(100 * accuracy).toFixed(2)}% on ${rows.length} rows`,
  );
  return {
    dataset: DATASET,
    trainJobId: t.jobId,
    inferenceJobId: inf.jobId,
    losses,
    heldOutAccuracy: accuracy,
    heldOutRows: rows.length,
    proofsVerified: t.proofCheck.ok && inf.proofCheck.ok,
  };
}
