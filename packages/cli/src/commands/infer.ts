import {
  accessSync,
  constants,
  existsSync,
  linkSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type DevnetStateFile, devnetRoots, runJob } from '@firn/client';
import { privateKeyToAccount } from 'viem/accounts';
import { FirnError, type Hex } from '@firn/core';
import { parseTensorMap } from '@firn/ml/formats';
import { assertNoExternalData } from '@firn/ml/onnx-check';
import type { Command } from 'commander';
import { etherArg, firstPartyNodeChoice, requesterKeyFor, resolveChain } from '../chainArgs.ts';
import { journalPosts, reserveResultKey } from '../jobJournal.ts';
import { journalOptions } from '../rpcUrl.ts';
import { MAX_OUTPUT_HELP, maxOutputArg } from '../sizeArgs.ts';
import {
  chainFlags,
  guardJobInFlight,
  jobListCommand,
  jobReclaimCommand,
  jobResultCommand,
} from '../jobInterrupt.ts';
import { newResultKem, wipe } from '../resultKem.ts';
import { printError, printJson } from '../output.ts';
import { partialPathFor, removeAbandonedPartialsBeside } from '../partialFiles.ts';
import { readKemKeyPair } from '../kemKeyFile.ts';
import { padUploads } from '../padUpload.ts';
import { readUserFileSync } from '../readUserFile.ts';
import { loadPolicy, loadSimRoots } from '../policyArgs.ts';

export interface InferOptions {
  model: string;
  input: string;
  out: string;
  /** Default: OUT's name with `.proof.json` (e.g. out.json -> out.proof.json). */
  proof?: string;
  /** A KEM key file (firn artifact keygen) the outputs are sealed to, so `firn job result` can open them later. */
  kemKey?: string;
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
  /** `--max-output`: the job's declared output bound (a size, e.g. 64MiB; decision 1690). */
  maxOutput?: string;
  /** More RPC endpoints that must agree with --rpc on every registry read. */
  alsoRpc?: string[];
  /** false (`--no-pad`): seal the model and input at their exact sizes (default: padded, decision 1855). */
  pad?: boolean;
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
/** Largest --input tensor JSON read, bytes. */
const MAX_INPUT_BYTES = 256 * 1024 * 1024;

/** `--proof` by default: beside OUT, `x.json` -> `x.proof.json` (train writes MODEL_DIR/proof.json). */
export function defaultProofPath(out: string): string {
  return out.toLowerCase().endsWith('.json') ? `${out.slice(0, -5)}.proof.json` : `${out}.proof.json`;
}

/**
 * Refuse, before any payment, an output path that exists (E_CONFLICT) or cannot be created: its
 * directory missing (E_NOT_FOUND) or not writable (E_FORBIDDEN). Names the flag and the path.
 */
export function assertWritableNew(path: string, flag: string): void {
  // A folder is named as a folder, not as a file that "already exists" (decision 1747).
  if (isFolder(path))
    throw new FirnError('E_INVALID_INPUT', `${flag} ${path} is a directory: name a file (e.g. in it)`);
  if (existsSync(path))
    throw new FirnError('E_CONFLICT', `${flag} ${path} already exists; pass another path or remove it`);
  const dir = dirname(path);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(dir);
  } catch {
    throw new FirnError('E_NOT_FOUND', `${flag} ${path}: the directory ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new FirnError('E_INVALID_INPUT', `${flag} ${path}: ${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new FirnError('E_FORBIDDEN', `${flag} ${path}: the directory ${dir} is not writable`);
  }
}

/** Whether `p` is a folder (false when it does not exist or cannot be stat'ed). */
function isFolder(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Write files all or nothing: each goes to a temp file beside its target, and only when every one
 * is written are they published under their final names. A file already at a final name is never
 * replaced (decision 1666): each is published with link(2), which fails EEXIST instead of replacing
 * what appeared there since the command checked (another run with the same --out, a file the user
 * saved meanwhile); then the files this call already published are removed again, and E_CONFLICT
 * names the path and `o.recover` (where the result can be had again, e.g. a `firn job result`
 * command). `o.replace` (a `--force`), or a file's own `replace` (a file this command wrote
 * earlier, e.g. `firn run`'s plan.json), renames over an existing file instead. A filesystem
 * without hard links (EPERM, ENOTSUP) falls back to a re-check just before each rename.
 */
export function writeFilesAtomically(
  files: { path: string; bytes: Uint8Array | string; replace?: boolean }[],
  o: { replace?: boolean; recover?: string } = {},
): void {
  const tmps: string[] = [];
  const published: { path: string; ino: number }[] = [];
  // Partial files a killed writer left beside these go first (decision 1542); these name their writer.
  for (const f of files) removeAbandonedPartialsBeside(f.path);
  // A signal (ctrl-C, SIGTERM, a closed terminal) must not end the process mid-write with plaintext
  // in a temp file (its default action would). The writes below are synchronous, so a handler runs
  // only once they are done: it removes any temp file still there, then ends the process by the
  // signal. The handlers stay until the next turn of the event loop has polled, so a signal taken
  // meanwhile reaches them rather than being dropped.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const onSignal = (s: NodeJS.Signals) => {
    for (const t of tmps) rmSync(t, { force: true });
    for (const t of signals) process.off(t, onSignal);
    process.kill(process.pid, s);
  };
  for (const s of signals) process.on(s, onSignal);
  // Removed only in the check phase of the next turn: it follows that turn's poll phase, where a
  // signal taken during the writes reaches its handler (the current turn may be past its poll).
  setImmediate(() =>
    setImmediate(() => {
      for (const s of signals) process.off(s, onSignal);
    }),
  );
  try {
    for (const f of files) {
      const tmp = partialPathFor(f.path);
      tmps.push(tmp);
      writeFileSync(tmp, f.bytes, { mode: 0o600, flag: 'wx' });
    }
    for (const [i, f] of files.entries()) {
      if (o.replace === true || f.replace === true) renameSync(tmps[i]!, f.path);
      else {
        const ino = statSync(tmps[i]!).ino;
        publishNew(tmps[i]!, f.path, o.recover);
        published.push({ path: f.path, ino });
      }
    }
    for (const t of tmps) rmSync(t, { force: true });
  } catch (e) {
    // Only the links this call made go: a file whose inode is no longer its temp file's is not ours.
    for (const p of published)
      try {
        if (statSync(p.path).ino === p.ino) rmSync(p.path, { force: true });
      } catch {
        // Gone already: nothing of ours to remove.
      }
    for (const t of tmps) rmSync(t, { force: true });
    throw e;
  }
}

/**
 * Publish `tmp` as `path` only when nothing is at `path` (link(2) fails EEXIST rather than
 * replace). E_CONFLICT names the path and, when given, where the result can be had again.
 */
function publishNew(tmp: string, path: string, recover: string | undefined): void {
  const conflict = () =>
    new FirnError(
      'E_CONFLICT',
      `${path} appeared while this command ran and was left as it is; nothing was written${recover ? `; ${recover}` : ''}`,
      { details: { path } },
    );
  try {
    linkSync(tmp, path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'EEXIST') throw conflict();
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
    // No hard links here: re-checked right before the rename (a narrower window, not none).
    if (existsSync(path)) throw conflict();
    renameSync(tmp, path);
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
): Promise<InferResult & { out: string; proof: string }> {
  const escrow = etherArg(o.escrow, '--escrow');
  // Checked with the other flags, before anything is sealed or posted (decision 1690).
  const maxOutputBytes = maxOutputArg(o.maxOutput);
  const out = resolve(o.out);
  const proof = resolve(o.proof ?? defaultProofPath(o.out));
  if (out === proof) throw new FirnError('E_INVALID_INPUT', '--out and --proof must differ');
  // Before any escrow: never write over a file the user has (a swapped flag would hit the model),
  // and make sure both can be written at all (`--out /nope/x.json` must fail here, not after paying).
  for (const [flag, p] of [
    ['--out', out],
    ['--proof', proof],
  ] as const)
    assertWritableNew(p, flag);
  // Read and check the inputs before the network: a wrong --model path names the path, not the RPC.
  const model = readUserFileSync(o.model, '--model', MAX_MODEL_BYTES);
  // A CSV, an empty file or a note passed as --model is the user's mistake: refuse it here, not
  // after a job was posted and the enclave refused it.
  try {
    if (model.length === 0) throw new FirnError('E_MODEL_INVALID', 'the file is empty');
    assertNoExternalData(model);
  } catch (e) {
    throw new FirnError(
      'E_INVALID_INPUT',
      `--model ${o.model} is not an ONNX model: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
  const input = readUserFileSync(o.input, '--input', MAX_INPUT_BYTES);
  // Validate the input locally first: a malformed file should not cost an escrow round trip.
  namingFile('--input', o.input, () => parseTensorMap(input));
  const requesterKem = o.kemKey ? readKemKeyPair(o.kemKey) : undefined;
  const chain = await resolveChain({
    ...(o.rpc ? { rpc: o.rpc } : {}),
    ...(o.market ? { market: o.market } : {}),
    ...(o.devnet ? { devnet: o.devnet } : {}),
    ...(o.deployment ? { deployment: o.deployment } : {}),
  });
  const state = chain.devnet as { simulatedRootPem?: string } | undefined;
  const requesterKey = requesterKeyFor(chain, o.keyFile);
  const policy = loadPolicy(o.policy, o.devnet ? 'dev' : 'production');
  const pinned = state?.simulatedRootPem
    ? devnetRoots(state as DevnetStateFile)
    : { roots: {}, gpuRoots: {} };
  const roots = o.simRoot ? loadSimRoots(o.simRoot) : pinned.roots;
  const journal = journalOptions({ ...o, model: resolve(o.model), input: resolve(o.input), out, proof });
  // Without --kem-key the result key is derived from the requester key and a per-job salt kept in
  // the journal, so an interrupted run loses nothing: `firn job result` derives it again (1630).
  const derived = requesterKem ? undefined : newResultKem(requesterKey);
  // The salt is on disk before any escrow is sent, or nothing is paid (decision 1747).
  const reservation = derived
    ? reserveResultKey({
        command: 'infer',
        options: journal,
        resultKem: derived.record,
        kemFlag: '--kem-key',
      })
    : undefined;
  const guard = guardJobInFlight({
    chain: { rpcUrl: chain.rpcUrl, deployment: chain.deployment, requesterKey },
    resultCommand: (id) =>
      jobResultCommand(id, { ...chainFlags(o), ...(o.kemKey ? { kemKey: o.kemKey } : {}), out }),
    reclaimCommand: (id) => jobReclaimCommand(id, chainFlags(o)),
    listCommand: (requester) => jobListCommand(requester, chainFlags(o)),
    stderr: process.stderr,
  });
  const post = journalPosts({
    command: 'infer',
    options: journal,
    deployment: chain.deployment,
    requester: privateKeyToAccount(requesterKey).address,
    ...(derived ? { resultKem: derived.record } : {}),
    ...(reservation ? { reservation } : {}),
    guard,
    say: log,
    warn: log,
  });
  let r: Awaited<ReturnType<typeof runJob>>;
  try {
    r = await runJob({
      rpcUrl: chain.rpcUrl,
      deployment: chain.deployment,
      requesterKey,
      policy,
      roots,
      gpuRoots: pinned.gpuRoots,
      ...(o.node ? { node: o.node } : {}),
      ...firstPartyNodeChoice(chain, o.node),
      ...(o.alsoRpc && o.alsoRpc.length > 0 ? { extraRpcUrls: o.alsoRpc } : {}),
      kind: 'inference',
      inputs: padUploads(
        [
          { role: 'model', bytes: model, contentType: 'application/onnx' },
          { role: 'input', bytes: input, contentType: 'application/json' },
        ],
        o.pad !== false,
        (role) => (role === 'model' ? MAX_MODEL_BYTES : MAX_INPUT_BYTES),
        log,
      ),
      params: {},
      escrow,
      ...(maxOutputBytes === undefined ? {} : { maxOutputBytes }),
      requesterKem: requesterKem ?? derived!.kem,
      onPostSigned: post.onPostSigned,
      onPostSent: post.onPostSent,
      onPosted: post.onPosted,
      onProgress: (e) => log(`progress: ${JSON.stringify(e)}`),
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
  if (!r.proofCheck.ok)
    throw new FirnError('E_PROOF_INVALID', `proof does not verify: ${r.proofCheck.reasons.join('; ')}`);
  const output = r.outputs.find((x) => x.role === 'output');
  if (!output) throw new FirnError('E_JOB_FAILED', 'the job returned no output');
  const names = outputTensorNames(output.bytes);
  // Never over a file that appeared at --out or --proof while the job ran (decision 1666).
  writeFilesAtomically(
    [
      { path: out, bytes: output.bytes },
      { path: proof, bytes: `${JSON.stringify(r.proof, null, 2)}\n` },
    ],
    {
      recover: `job ${r.jobId}'s result stays fetchable: ${jobResultCommand(r.jobId, { ...chainFlags(o), ...(o.kemKey ? { kemKey: o.kemKey } : {}), out })}`,
    },
  );
  const result: InferResult & { out: string; proof: string } = {
    out,
    proof,
    jobId: r.jobId,
    node: r.node.endpoint,
    enclaveId: r.node.enclaveId,
    outputs: names,
    proofOk: r.proofCheck.ok,
    reasons: r.proofCheck.reasons,
  };
  return result;
}

/**
 * The tensor names of an inference output (a JSON object keyed by tensor name). Throws
 * E_JOB_FAILED when it is not one; the message never quotes the bytes (the requester's result).
 */
export function outputTensorNames(bytes: Uint8Array): string[] {
  let o: unknown;
  try {
    o = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    o = undefined;
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw new FirnError(
      'E_JOB_FAILED',
      'the inference job returned an output that is not a JSON object of tensors',
    );
  return Object.keys(o);
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
    .option('--proof <file>', 'where to write the signed Work Proof (default: OUT with .proof.json)')
    .option(
      '--kem-key <file>',
      'KEM key file (firn artifact keygen) to seal the outputs to (else one derived from the requester key, reopened by firn job result)',
    )
    .option('--rpc <url>', 'RPC URL')
    .option('--market <address>', 'job market address (the registry is read from it)')
    .option('--devnet <file>', 'devnet state file (addresses, requester key, simulated root)')
    .option('--deployment <file>', 'deployment file (firn deploy)')
    .option('--key-file <file>', 'requester private key file (else env FIRN_REQUESTER_KEY)')
    .option('--node <url>', 'node endpoint (else the first Active node in the registry)')
    .option('--policy <spec>', 'dev | production | FILE (default production, dev with --devnet)')
    .option('--sim-root <pem>', 'pinned simulated TEE root (dev policy)')
    .option('--escrow <eth>', 'escrow to pay, in ether', '0.01')
    .option('--max-output <size>', MAX_OUTPUT_HELP)
    .option(
      '--also-rpc <url...>',
      'more RPC endpoints of the same chain; every registry read must agree on all of them at one block',
    )
    .option(
      '--no-pad',
      'seal the model and input at their exact sizes (default: padded to a Padmé bucket, so the host cannot tell which known model was sent; at most 12 % more bytes)',
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
            `job ${r.jobId} on ${r.node}: outputs ${r.outputs.join(', ')} written to ${r.out}; proof verified, written to ${r.proof}\n`,
          );
      } catch (e) {
        printError(e, o.json === true);
        process.exitCode = 1;
      }
    });
}

/** Runs `f`; a FirnError it throws about a file's content is rethrown naming `flag` and `path`. */
export function namingFile<T>(flag: string, path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof FirnError) throw new FirnError(e.code, `${flag} ${path}: ${e.message}`, { cause: e });
    throw e;
  }
}

export { readKemKeyPair };
