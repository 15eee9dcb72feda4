/**
 * Confidential vs plain inference on the same mid-size ONNX model, in one run.
 *
 * plain:        onnxruntime-node session, loaded once, `run` per request.
 * confidential: a warm enclave session on a live devnet node: the model is sealed, uploaded and
 *               granted once per job; per request the requester seals the input, uploads it
 *               (HTTP PUT), grants both artifacts to the enclave and seals the job request
 *               (HPKE channel); the enclave verifies the grants, decrypts (the model plaintext
 *               and its onnxruntime session are cached by artifact id + data key), runs, seals
 *               the output and signs the Work Proof; the requester downloads the sealed output
 *               and opens it. The job reaches the enclave through the node's supervisor pipe,
 *               not through the market: chain transactions (post, claim, submit; seconds on a
 *               real chain) are excluded here and measured separately as "market path".
 * attestation:  fetching and appraising fresh evidence (once per session in practice); the
 *               "included" ratio charges one attestation to every request (worst case).
 *
 * Run: node packages/cli/bin/run-ts.mjs bench/confidentialInference.ts [sizeMB] [iterations]
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  attestNode,
  buildJobRequest,
  jobCommitments,
  NodeApi,
  openOutput,
  runJob,
  sealInput,
} from '@firn/client';
import { createFirnClients } from '@firn/chain';
import { bytesToHex, type Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import type { RunJobResult } from '@firn/enclave';
import { createPrng, loadOnnxModel, parseTensorMap } from '@firn/ml';
import { startTestNetwork } from '../tests/e2e/network.ts';
import { makeMidSizeModel } from './inference.ts';

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

export async function runConfidentialInferenceBenchmark(
  opts: { sizeMB?: number; iterations?: number; batch?: number } = {},
) {
  const sizeMB = opts.sizeMB ?? 20;
  const iterations = opts.iterations ?? 30;
  const batch = opts.batch ?? 64;
  const m = makeMidSizeModel(sizeMB);
  const rng = createPrng(3);
  const inputJson = (rows: number) =>
    JSON.stringify({
      input: {
        dims: [rows, m.inputFeatures],
        type: 'float32',
        data: Array.from({ length: rows * m.inputFeatures }, () => rng.next()),
      },
    });

  // Plain.
  const plain = await loadOnnxModel(m.bytes);
  const plainRun = async (rows: number) => {
    const t = performance.now();
    await plain.run(parseTensorMap(inputJson(rows)));
    return performance.now() - t;
  };
  await plainRun(1);
  const plainLat: number[] = [];
  for (let i = 0; i < iterations; i++) plainLat.push(await plainRun(1));
  let plainBatchMs = 0;
  for (let i = 0; i < Math.ceil(iterations / 3); i++) plainBatchMs += await plainRun(batch);
  const plainRowsPerSec = (batch * Math.ceil(iterations / 3)) / (plainBatchMs / 1000);

  // Confidential, warm session.
  const net = await startTestNetwork();
  try {
    const clients = createFirnClients(net.anvil.rpcUrl, net.requester.privateKey, net.deployment, {
      pollingIntervalMs: 50,
    });
    const tAtt = performance.now();
    const node = await attestNode(clients, {
      policy: net.policy,
      roots: net.roots,
      now: Math.floor(Date.now() / 1000),
    });
    const attestMs = performance.now() - tAtt;
    const api = new NodeApi(node.endpoint);
    const kem = await generateKemKeyPair();
    const sealedModel = await sealInput(m.bytes, 'application/onnx', kem.publicKey);
    await api.uploadArtifact(sealedModel.sealed);
    const domain = { chainId: net.deployment.chainId, jobMarket: net.deployment.jobMarket };
    const jobs = net.node.jobs!;
    const request = async (rows: number) => {
      const t = performance.now();
      const input = await sealInput(
        new TextEncoder().encode(inputJson(rows)),
        'application/json',
        kem.publicKey,
      );
      await api.uploadArtifact(input.sealed);
      const jobId = bytesToHex(randomBytes(32)) as Hex;
      const refs = [
        { role: 'model', artifactId: sealedModel.artifactId, dataKey: sealedModel.dataKey },
        { role: 'input', artifactId: input.artifactId, dataKey: input.dataKey },
      ];
      const built = await buildJobRequest({
        jobId,
        kind: 'inference',
        inputs: refs,
        params: {},
        requesterKey: net.requester.privateKey,
        enclave: node,
        resultRecipient: kem.publicKey,
        domain,
        grantExpiresAt: Math.floor(Date.now() / 1000) + 600,
      });
      const r = await net.node.supervisor.call<RunJobResult>('runJob', {
        jobId,
        enc: built.body.enc,
        request: built.body.ciphertext,
        inputPaths: Object.fromEntries(refs.map((x) => [x.artifactId, jobs.artifacts.path(x.artifactId)])),
        onChain: jobCommitments('inference', {}, refs),
        domain,
        outputDir: jobs.artifacts.tempDir('bench'),
      });
      const out = await openOutput(new Uint8Array(readFileSync(r.outputs[0]!.path)), kem.privateKey);
      if (out.bytes.length === 0) throw new Error('empty output');
      return performance.now() - t;
    };
    const tFirst = performance.now();
    await request(1); // cold: decrypts the model and loads the session
    const coldMs = performance.now() - tFirst;
    const confLat: number[] = [];
    for (let i = 0; i < iterations; i++) confLat.push(await request(1));
    let confBatchMs = 0;
    for (let i = 0; i < Math.ceil(iterations / 3); i++) confBatchMs += await request(batch);
    const confRowsPerSec = (batch * Math.ceil(iterations / 3)) / (confBatchMs / 1000);

    // Market path (post, claim, run, submit proof, verify), a few requests.
    const market: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      await runJob({
        rpcUrl: net.anvil.rpcUrl,
        deployment: net.deployment,
        requesterKey: net.requester.privateKey,
        requesterKem: kem,
        policy: net.policy,
        roots: net.roots,
        kind: 'inference',
        inputs: [
          { role: 'model', sealed: sealedModel },
          { role: 'input', bytes: new TextEncoder().encode(inputJson(1)), contentType: 'application/json' },
        ],
        params: {},
        escrow: 10n ** 12n,
      });
      market.push(performance.now() - t);
    }
    const p = median(plainLat);
    const c = median(confLat);
    const result = {
      model: { sizeMiB: +(m.bytes.length / 1024 / 1024).toFixed(1), hidden: m.hidden },
      plain: { p50Ms: +p.toFixed(2), batch, rowsPerSec: Math.round(plainRowsPerSec) },
      confidential: {
        coldFirstRequestMs: Math.round(coldMs),
        p50Ms: +c.toFixed(2),
        batch,
        rowsPerSec: Math.round(confRowsPerSec),
        attestationMs: +attestMs.toFixed(1),
      },
      marketPathP50Ms: Math.round(median(market)),
      ratios: {
        latencyAttestationExcluded: +(c / p).toFixed(3),
        latencyAttestationIncluded: +((c + attestMs) / p).toFixed(3),
        throughputAttestationExcluded: +(plainRowsPerSec / confRowsPerSec).toFixed(3),
        throughputAttestationIncluded: +(plainBatchMs / Math.ceil(iterations / 3) + 0 > 0
          ? (
              (confBatchMs / Math.ceil(iterations / 3) + attestMs) /
              (plainBatchMs / Math.ceil(iterations / 3))
            ).toFixed(3)
          : 'NaN'),
      },
    };
    return result;
  } finally {
    await net.stop();
    await plain.release();
  }
}

if (process.argv[1] && join(process.argv[1]).endsWith('confidentialInference.ts')) {
  const [size, iters] = process.argv.slice(2).map(Number);
  const r = await runConfidentialInferenceBenchmark({
    ...(size ? { sizeMB: size } : {}),
    ...(iters ? { iterations: iters } : {}),
  });
  console.log(JSON.stringify(r, null, 2));
  console.log(
    `confidential/plain per-request latency ${r.ratios.latencyAttestationExcluded}x (attestation included ${r.ratios.latencyAttestationIncluded}x); ` +
      `throughput ratio plain/confidential ${r.ratios.throughputAttestationExcluded}x (included ${r.ratios.throughputAttestationIncluded}x); target 1.10x warm`,
  );
}
