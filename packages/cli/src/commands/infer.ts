import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type DevnetStateFile, devnetRoots, runJob } from '@firn/client';
import { FirnError, type Hex, TooLargeError } from '@firn/core';
import { parseTensorMap } from '@firn/ml/formats';
import type { Command } from 'commander';
import { etherArg, readKey, resolveChain } from '../chainArgs.ts';
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
  /** Deployment file (firn deploy); with --rpc. */
  deployment?: string;
  keyFile?: string;
  node?: string;
  policy?: string;
  simRoot?: string;
  /** Escrow in ether (decimal string). */
  escrow: string;
  /** More RPC endpoints that must agree with --rpc on every registry read. */
  alsoRpc?: string[];
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
 * Write files all or nothing: each goes to a temp file beside its target, and only when every one
 * is written are they renamed into place (a rename within a directory is atomic on POSIX).
 */
export function writeFilesAtomically(files: { path: string; bytes: Uint8Array | string }[]): void {
  const tmps: string[] = [];
  try {
    for (const f of files) {
      const tmp = `${f.path}.${randomBytes(6).toString('hex')}.tmp`;
      tmps.push(tmp);
      writeFileSync(tmp, f.bytes, { mode: 0o600, flag: 'wx' });
    }
    for (const [i, f] of files.entries()) renameSync(tmps[i]!, f.path);
  } catch (e) {
    for (const t of tmps) rmSync(t, { force: true });
    throw e;
  }
}

/**
 * `firn infer`: run one ONNX model on one tensor JSON input through the market, and write the
 * outputs (tensor JSON) and the signed proof only once the proof verifies: before that, outputs
 * live only in memory, and a proof that fails writes nothing (E_PROOF_INVALID).
 */
export async function inferCommand(
  o: InferOptions,
  log: (line: string) => void = () => {},
): Promise<InferResult> {
  const escrow = etherArg(o.escrow, '--escrow');
  // Before any escrow: never write over a file the user has (a swapped flag would hit the model).
  for (const p of [o.out, o.proof])
    if (existsSync(p))
      throw new FirnError('E_CONFLICT', `${p} already exists; pass another path or remove it`);
  if (resolve(o.out) === resolve(o.proof))
    throw new FirnError('E_INVALID_INPUT', '--out and --proof must differ');
  const chain = await resolveChain({
    ...(o.rpc ? { rpc: o.rpc } : {}),
    ...(o.market ? { market: o.market } : {}),
    ...(o.devnet ? { devnet: o.devnet } : {}),
    ...(o.deployment ? { deployment: o.deployment } : {}),
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
    ...(o.alsoRpc && o.alsoRpc.length > 0 ? { extraRpcUrls: o.alsoRpc } : {}),
    kind: 'inference',
    inputs: [
      { role: 'model', bytes: model, contentType: 'application/onnx' },
      { role: 'input', bytes: input, contentType: 'application/json' },
    ],
    params: {},
    escrow,
    onPosted: (jobId) => log(`job ${jobId} posted`),
    onProgress: (e) => log(`progress: ${JSON.stringify(e)}`),
  });
  if (!r.proofCheck.ok)
    throw new FirnError('E_PROOF_INVALID', `proof does not verify: ${r.proofCheck.reasons.join('; ')}`);
  const out = r.outputs.find((x) => x.role === 'output');
  if (!out) throw new FirnError('E_JOB_FAILED', 'the job returned no output');
  const names = Object.keys(JSON.parse(new TextDecoder().decode(out.bytes)) as object);
  writeFilesAtomically([
    { path: o.out, bytes: out.bytes },
    { path: o.proof, bytes: `${JSON.stringify(r.proof, null, 2)}\n` },
  ]);
  const result: InferResult = {
    jobId: r.jobId,
    node: r.node.endpoint,
    enclaveId: r.node.enclaveId,
    outputs: names,
    proofOk: r.proofCheck.ok,
    reasons: r.proofCheck.reasons,
  };
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
    .option('--deployment <file>', 'deployment file (firn deploy)')
    .option('--key-file <file>', 'requester private key file (else env FIRN_REQUESTER_KEY)')
    .option('--node <url>', 'node endpoint (else the first Active node in the registry)')
    .option('--policy <spec>', 'dev | production | FILE (default production, dev with --devnet)')
    .option('--sim-root <pem>', 'pinned simulated TEE root (dev policy)')
    .option('--escrow <eth>', 'escrow to pay, in ether', '0.01')
    .option(
      '--also-rpc <url...>',
      'more RPC endpoints of the same chain; every registry read must agree on all of them at one block',
    )
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
