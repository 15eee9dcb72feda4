import { readFileSync, writeFileSync } from 'node:fs';
import { type DevnetStateFile, devnetRoots, runJob } from '@firn/client';
import { FirnError, type Hex, TooLargeError } from '@firn/core';
import { parseTensorMap } from '@firn/ml/formats';
import type { Command } from 'commander';
import { parseEther } from 'viem';
import { readKey, resolveChain } from '../chainArgs.ts';
import { printError, printJson } from '../output.ts';
import { loadPolicy, loadSimRoots } from '../policyArgs.ts';

export interface InferOptions {
  model: string;
  input: string;
  out: string;
  proof: string;
  rpc?: string;
  market?: string;
  devnet?: string;
  keyFile?: string;
  node?: string;
  policy?: string;
  simRoot?: string;
  /** Escrow in ether (decimal string). */
  escrow: string;
  json?: boolean;
}

export interface InferResult {
  jobId: Hex;
  node: string;
  enclaveId: Hex;
  outputs: string[];
  proofOk: boolean;
  reasons: string[];
}

const MAX_MODEL_BYTES = 2 * 1024 * 1024 * 1024 - 1;

function readCapped(path: string, cap: number, what: string): Uint8Array {
  const b = new Uint8Array(readFileSync(path));
  if (b.length > cap) throw new TooLargeError(what, b.length, cap);
  return b;
}

/**
 * `firn infer`: run one ONNX model on one tensor JSON input through the market, write the outputs
 * (tensor JSON) and the signed proof, and fail unless the proof verifies.
 */
export async function inferCommand(
  o: InferOptions,
  log: (line: string) => void = () => {},
): Promise<InferResult> {
  const chain = await resolveChain({
    ...(o.rpc ? { rpc: o.rpc } : {}),
    ...(o.market ? { market: o.market } : {}),
    ...(o.devnet ? { devnet: o.devnet } : {}),
  });
  const state = chain.devnet as
    | { accounts?: { requester?: { privateKey?: Hex } }; simulatedRootPem?: string }
    | undefined;
  const requesterKey =
    o.keyFile === undefined && state?.accounts?.requester?.privateKey
      ? state.accounts.requester.privateKey
      : readKey({ ...(o.keyFile ? { keyFile: o.keyFile } : {}), env: 'FIRN_REQUESTER_KEY' });
  const policy = loadPolicy(o.policy, o.devnet ? 'dev' : 'production');
  const pinned = state?.simulatedRootPem
    ? devnetRoots(state as DevnetStateFile)
    : { roots: {}, gpuRoots: {} };
  const roots = o.simRoot ? loadSimRoots(o.simRoot) : pinned.roots;
  const model = readCapped(o.model, MAX_MODEL_BYTES, 'model');
  const input = readCapped(o.input, 256 * 1024 * 1024, 'input');
  // Validate the input locally first: a malformed file should not cost an escrow round trip.
  parseTensorMap(input);
  const r = await runJob({
    rpcUrl: chain.rpcUrl,
    deployment: chain.deployment,
    requesterKey,
    policy,
    roots,
    gpuRoots: pinned.gpuRoots,
    ...(o.node ? { node: o.node } : {}),
    kind: 'inference',
    inputs: [
      { role: 'model', bytes: model, contentType: 'application/onnx' },
      { role: 'input', bytes: input, contentType: 'application/json' },
    ],
    params: {},
    escrow: parseEther(o.escrow),
    onPosted: (jobId) => log(`job ${jobId} posted`),
    onProgress: (e) => log(`progress: ${JSON.stringify(e)}`),
  });
  const out = r.outputs.find((x) => x.role === 'output');
  if (!out) throw new FirnError('E_JOB_FAILED', 'the job returned no output');
  writeFileSync(o.out, out.bytes);
  writeFileSync(o.proof, `${JSON.stringify(r.proof, null, 2)}\n`);
  const result: InferResult = {
    jobId: r.jobId,
    node: r.node.endpoint,
    enclaveId: r.node.enclaveId,
    outputs: Object.keys(JSON.parse(new TextDecoder().decode(out.bytes)) as object),
    proofOk: r.proofCheck.ok,
    reasons: r.proofCheck.reasons,
  };
  if (!r.proofCheck.ok)
    throw new FirnError('E_PROOF_INVALID', `proof does not verify: ${r.proofCheck.reasons.join('; ')}`);
  return result;
}

export function registerInfer(program: Command): void {
  program
    .command('infer')
    .description('run a confidential inference job through the job market and verify its proof')
    .requiredOption('--model <file>', 'ONNX model')
    .requiredOption(
      '--input <file>',
      'input tensors: {"<name>": {"dims": [..], "type": "float32", "data": [..]}}',
    )
    .requiredOption('--out <file>', 'where to write the output tensors (same JSON shape)')
    .requiredOption('--proof <file>', 'where to write the signed Work Proof (PROOF.json)')
    .option('--rpc <url>', 'RPC URL')
    .option('--market <address>', 'job market address (the registry is read from it)')
    .option('--devnet <file>', 'devnet state file (addresses, requester key, simulated root)')
    .option('--key-file <file>', 'requester private key file (else env FIRN_REQUESTER_KEY)')
    .option('--node <url>', 'node endpoint (else the first Active node in the registry)')
    .option('--policy <spec>', 'dev | production | FILE (default production, dev with --devnet)')
    .option('--sim-root <pem>', 'pinned simulated TEE root (dev policy)')
    .option('--escrow <eth>', 'escrow to pay, in ether', '0.01')
    .option('--json', 'print a JSON summary')
    .action(async (o: InferOptions) => {
      try {
        const r = await inferCommand(o, (l) => {
          if (!o.json) process.stderr.write(`${l}\n`);
        });
        if (o.json) printJson(r);
        else
          process.stdout.write(
            `job ${r.jobId} on ${r.node}: outputs ${r.outputs.join(', ')} written to ${o.out}; proof verified, written to ${o.proof}\n`,
          );
      } catch (e) {
        printError(e, o.json === true);
        process.exitCode = 1;
      }
    });
}
