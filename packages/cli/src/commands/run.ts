import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { type AppJobInput, type DevnetStateFile, devnetRoots, type JobPlan, runApp } from '@firn/client';
import { privateKeyToAccount } from 'viem/accounts';
import { assertRole, FirnError, type Hex, hexBytes, InvalidInputError } from '@firn/core';
import { artifactId, MAX_GRANT_JSON_BYTES } from '@firn/crypto';
import { buildAppImage } from '@firn/node';
import type { Command } from 'commander';
import { etherArg, readKey, resolveChain } from '../chainArgs.ts';
import { MAX_OUTPUT_HELP, maxOutputArg } from '../sizeArgs.ts';
import { printError, printJson } from '../output.ts';
import { readKemKeyPair, writeFilesAtomically } from './infer.ts';
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
import { loadPolicy, loadSimRoots } from '../policyArgs.ts';
import { readUserFileSync } from '../readUserFile.ts';

export interface RunOptions {
  /** An app folder (built here to learn its measurement) or a 32-byte measurement. */
  app: string;
  workload: string;
  /** ROLE=FILE, the requester's own plaintext inputs. */
  input?: string[];
  /** ROLE=FILE, sealed artifacts of other owners (granted by them: see --grants-dir). */
  inputSealed?: string[];
  /** KEY=VALUE (VALUE parsed as JSON when it parses, else a string). */
  param?: string[];
  /** Extra output recipients (X25519 public keys, hex). */
  recipient?: string[];
  out: string;
  /** Where other owners' grant files appear (default OUT/grants). */
  grantsDir?: string;
  /** Seconds to wait for them (default 600). */
  grantTimeout?: string;
  /** The requester's KEM key file (firn artifact keygen), to open the outputs again later. */
  kemKeyFile?: string;
  rpc?: string;
  market?: string;
  devnet?: string;
  keyFile?: string;
  node?: string;
  policy?: string;
  simRoot?: string;
  escrow: string;
  /** `--max-output`: the job's declared output bound (a size, e.g. 64MiB; decision 1690). */
  maxOutput?: string;
  /** More RPC endpoints that must agree with the first on every registry read. */
  alsoRpc?: string[];
  json?: boolean;
}

export interface RunResult {
  jobId: Hex;
  app: Hex;
  workload: string;
  node: string;
  enclaveId: Hex;
  /** Files written under --out. */
  outputs: { role: string; path: string; contentType: string; size: number }[];
  proof: string;
  records: string;
  recordCount: number;
  proofOk: boolean;
  reasons: string[];
}

const MAX_INPUT_BYTES = 2 * 1024 * 1024 * 1024 - 1;
const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.csv': 'text/csv',
  '.txt': 'text/plain',
  '.onnx': 'application/onnx',
  '.safetensors': 'application/safetensors',
};

function roleFile(spec: string, flag: string): { role: string; file: string } {
  const i = spec.indexOf('=');
  if (i <= 0)
    throw new InvalidInputError(`${flag} must be ROLE=FILE (got ${JSON.stringify(spec.slice(0, 80))})`);
  return { role: assertRole(spec.slice(0, i), `${flag} role`), file: spec.slice(i + 1) };
}

/** KEY=VALUE pairs to params; VALUE is JSON when it parses (numbers, booleans, arrays), else a string. */
export function parseParams(pairs: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0)
      throw new InvalidInputError(`--param must be KEY=VALUE (got ${JSON.stringify(p.slice(0, 80))})`);
    const k = p.slice(0, i);
    if (k.startsWith('firn.'))
      throw new InvalidInputError(`--param ${k}: keys starting with "firn." are reserved`);
    const v = p.slice(i + 1);
    try {
      out[k] = JSON.parse(v);
    } catch {
      out[k] = v;
    }
  }
  return out;
}

/** The measurement of --app: a 0x digest as given, or an app folder built into a temporary image. */
export async function appMeasurement(app: string): Promise<Hex> {
  if (/^0x[0-9a-fA-F]{64}$/.test(app)) return app.toLowerCase() as Hex;
  if (!existsSync(app) || !statSync(app).isDirectory())
    throw new InvalidInputError(`--app ${app} is neither an app folder nor a 32-byte 0x measurement`);
  const out = mkdtempSync(join(tmpdir(), 'firn-run-image-'));
  try {
    return (await buildAppImage({ appDir: resolve(app), outDir: join(out, 'image') })).measurement;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/**
 * Wait until every foreign input has a grant among the JSON files of `dir` (each one grant, as
 * `firn artifact grant` writes it); E_TIMEOUT naming the roles still missing.
 */
async function awaitGrants(
  dir: string,
  plan: JobPlan,
  foreignRoles: readonly string[],
  timeoutS: number,
  log: (line: string) => void,
): Promise<unknown[]> {
  const want = plan.inputs.filter((i) => foreignRoles.includes(i.role));
  const until = Date.now() + timeoutS * 1000;
  log(`waiting for grants of ${want.map((w) => w.role).join(', ')} in ${dir} (up to ${timeoutS} s)`);
  for (;;) {
    const found = new Map<string, unknown>();
    for (const f of existsSync(dir) ? readdirSync(dir) : []) {
      if (!f.endsWith('.json')) continue;
      const path = join(dir, f);
      if (statSync(path).size > MAX_GRANT_JSON_BYTES) continue;
      try {
        const g = JSON.parse(readFileSync(path, 'utf8')) as {
          artifactId?: string;
          scope?: { jobId?: string };
        };
        if (typeof g.artifactId === 'string' && g.scope?.jobId?.toLowerCase() === plan.jobId.toLowerCase())
          found.set(g.artifactId.toLowerCase(), g);
      } catch {
        // A file still being written: read again next round.
      }
    }
    const missing = want.filter((w) => !found.has(w.artifactId.toLowerCase()));
    if (missing.length === 0) return want.map((w) => found.get(w.artifactId.toLowerCase()));
    if (Date.now() > until)
      throw new FirnError(
        'E_TIMEOUT',
        `no grant for ${missing.map((m) => m.role).join(', ')} after ${timeoutS} s: its owner runs firn artifact grant --plan ${join(dir, '..', 'plan.json')}`,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * `firn run`: run a workload of an app through the market (see runApp): attest a node hosting the
 * app, seal, post, collect other owners' grants, follow progress; then write each output role to
 * OUT/ROLE, the sealed outputs to OUT/sealed/ROLE.sealed (for the other recipients), the proof to
 * OUT/proof.json and the enclave-signed records to OUT/records.json, all or nothing through temp
 * files that name their writer (writeRunOutputs, decision 1542), and verify the proof
 * (E_PROOF_INVALID when it does not verify; the files are still written for inspection).
 */
export async function runCommand(o: RunOptions, log: (line: string) => void = () => {}): Promise<RunResult> {
  const escrow = etherArg(o.escrow, '--escrow');
  // Checked with the other flags, before anything is sealed or posted (decision 1690).
  const maxOutputBytes = maxOutputArg(o.maxOutput);
  const workload = assertRole(o.workload, '--workload');
  const out = resolve(o.out);
  // An empty sealed/ is what a run that failed before sealing anything leaves: a retry may reuse it.
  const leftover = (f: string) =>
    f !== 'grants' && !(f === 'sealed' && readdirSync(join(out, f)).length === 0);
  if (existsSync(out) && readdirSync(out).some(leftover))
    throw new FirnError('E_CONFLICT', `--out ${out} is not empty; pass a new folder`);
  const chain = await resolveChain({
    ...(o.rpc ? { rpc: o.rpc } : {}),
    ...(o.market ? { market: o.market } : {}),
    ...(o.devnet ? { devnet: o.devnet } : {}),
  });
  const state = chain.devnet as
    | (Partial<DevnetStateFile> & { accounts?: { requester?: { privateKey?: Hex } } })
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
  let requesterKem: { privateKey: Uint8Array; publicKey: Uint8Array } | undefined;
  if (o.kemKeyFile) requesterKem = readKemKeyPair(o.kemKeyFile, '--kem-key-file');
  const app = await appMeasurement(o.app);
  log(`app measurement ${app}`);
  const inputs: AppJobInput[] = [];
  for (const spec of o.input ?? []) {
    const { role, file } = roleFile(spec, '--input');
    inputs.push({
      role,
      bytes: readUserFileSync(file, `--input ${role}=`, MAX_INPUT_BYTES),
      contentType: CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    });
  }
  const foreignRoles: string[] = [];
  for (const spec of o.inputSealed ?? []) {
    const { role, file } = roleFile(spec, '--input-sealed');
    inputs.push({ role, foreignSealed: readUserFileSync(file, `--input-sealed ${role}=`, MAX_INPUT_BYTES) });
    foreignRoles.push(role);
  }
  if (inputs.length === 0)
    throw new InvalidInputError('pass at least one --input ROLE=FILE or --input-sealed ROLE=FILE');
  mkdirSync(join(out, 'sealed'), { recursive: true, mode: 0o700 });
  const grantsDir = resolve(o.grantsDir ?? join(out, 'grants'));
  // Without --kem-key-file the result key is derived from the requester key and a per-job salt kept
  // in the journal, so an interrupted run loses nothing: `firn job result` derives it again (1630).
  const derived = requesterKem ? undefined : newResultKem(requesterKey);
  const journal = journalOptions({ ...o, out, grantsDir });
  // The salt is on disk before any escrow is sent, or nothing is paid (decision 1747).
  const reservation = derived
    ? reserveResultKey({
        command: 'run',
        options: journal,
        resultKem: derived.record,
        kemFlag: '--kem-key-file',
      })
    : undefined;
  const guard = guardJobInFlight({
    chain: { rpcUrl: chain.rpcUrl, deployment: chain.deployment, requesterKey },
    resultCommand: (id) =>
      jobResultCommand(id, {
        ...chainFlags(o),
        ...(o.kemKeyFile ? { kemKey: o.kemKeyFile } : {}),
        out: join(out, 'result'),
      }),
    reclaimCommand: (id) => jobReclaimCommand(id, chainFlags(o)),
    listCommand: (requester) => jobListCommand(requester, chainFlags(o)),
    stderr: process.stderr,
  });
  const post = journalPosts({
    command: 'run',
    options: journal,
    deployment: chain.deployment,
    requester: privateKeyToAccount(requesterKey).address,
    ...(derived ? { resultKem: derived.record } : {}),
    ...(reservation ? { reservation } : {}),
    guard,
    say: log,
    warn: log,
  });
  let r: Awaited<ReturnType<typeof runApp>>;
  try {
    r = await runApp({
      rpcUrl: chain.rpcUrl,
      deployment: chain.deployment,
      requesterKey,
      requesterKem: requesterKem ?? derived!.kem,
      policy,
      roots,
      gpuRoots: pinned.gpuRoots,
      ...(o.node ? { node: o.node } : {}),
      ...(o.alsoRpc && o.alsoRpc.length > 0 ? { extraRpcUrls: o.alsoRpc } : {}),
      escrow,
      ...(maxOutputBytes === undefined ? {} : { maxOutputBytes }),
      app,
      workload,
      inputs,
      params: parseParams(o.param ?? []),
      ...(o.recipient && o.recipient.length > 0
        ? { recipients: o.recipient.map((k) => hexBytes(k, '--recipient', 32)) }
        : {}),
      onPostSigned: post.onPostSigned,
      onPostSent: post.onPostSent,
      onPosted: post.onPosted,
      onProgress: (e) => log(`progress: ${JSON.stringify(e)}`),
      collectGrants: async (plan) => {
        writeFileSync(join(out, 'plan.json'), `${JSON.stringify(plan, null, 2)}\n`);
        log(`job plan written to ${join(out, 'plan.json')}: each owner runs firn artifact grant --plan it`);
        return awaitGrants(grantsDir, plan, foreignRoles, Number(o.grantTimeout ?? 600), log);
      },
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
  const written = writeRunOutputs(
    out,
    r,
    `job ${r.jobId}'s result stays fetchable: firn job result ${r.jobId} --out <a new folder>`,
  );
  const result: RunResult = {
    jobId: r.jobId,
    app,
    workload,
    node: r.node.endpoint,
    enclaveId: r.node.enclaveId,
    outputs: written,
    proof: join(out, 'proof.json'),
    records: join(out, 'records.json'),
    recordCount: r.records.length,
    proofOk: r.proofCheck.ok,
    reasons: r.proofCheck.reasons,
  };
  if (!r.proofCheck.ok)
    throw new FirnError('E_PROOF_INVALID', `proof does not verify: ${r.proofCheck.reasons.join('; ')}`, {
      details: { jobId: r.jobId, out },
    });
  return result;
}

/**
 * Write a `firn run` result into `out` (which exists): each output's plaintext as `<role>` (mode
 * 0600), its sealed artifact as `sealed/<role>.sealed`, and plan.json, proof.json, records.json.
 * All or nothing through temp files that name their writer (writeFilesAtomically, decision 1542):
 * a signal the process can take removes them; a SIGKILL leaves only a temp file named by its dead
 * pid (never a file under its final name), which the next write into that folder removes.
 * Throws E_ARTIFACT_TAMPERED (nothing written) when a sealed output does not hash to its id.
 */
export function writeRunOutputs(
  out: string,
  r: Pick<Awaited<ReturnType<typeof runApp>>, 'plan' | 'outputs' | 'sealedOutputs' | 'proof' | 'records'>,
  recover?: string,
): RunResult['outputs'] {
  const written: RunResult['outputs'] = [];
  const files: { path: string; bytes: Uint8Array | string }[] = [];
  for (const [i, x] of r.outputs.entries()) {
    const sealed = r.sealedOutputs[i]!;
    if (artifactId(sealed.sealed) !== sealed.artifactId)
      throw new FirnError('E_ARTIFACT_TAMPERED', `sealed output ${x.role} does not hash to its id`);
    const path = join(out, x.role);
    files.push(
      { path, bytes: x.bytes },
      { path: join(out, 'sealed', `${x.role}.sealed`), bytes: sealed.sealed },
    );
    written.push({ role: x.role, path, contentType: x.contentType, size: x.bytes.length });
  }
  mkdirSync(join(out, 'sealed'), { recursive: true, mode: 0o700 });
  // Nothing that appeared in --out meanwhile is replaced (decision 1666), but plan.json, which
  // this run wrote itself when it waited for grants.
  writeFilesAtomically(
    [
      ...files,
      { path: join(out, 'plan.json'), bytes: `${JSON.stringify(r.plan, null, 2)}\n`, replace: true },
      { path: join(out, 'proof.json'), bytes: `${JSON.stringify(r.proof, null, 2)}\n` },
      { path: join(out, 'records.json'), bytes: `${JSON.stringify(r.records, null, 2)}\n` },
    ],
    recover === undefined ? {} : { recover },
  );
  return written;
}

const collect = (v: string, acc: string[]) => [...acc, v];

export function registerRun(program: Command): void {
  program
    .command('run')
    .description(
      'run a workload of an app in an attested enclave through the job market, and verify its proof',
    )
    .requiredOption(
      '--app <dir|measurement>',
      'the app folder (its measurement is computed) or its 0x measurement',
    )
    .requiredOption('--workload <name>', 'the workload to run')
    .option('--input <role=file>', 'your own input (repeatable)', collect, [] as string[])
    .option(
      '--input-sealed <role=file>',
      "another owner's sealed artifact (repeatable); its owner grants it with firn artifact grant",
      collect,
      [] as string[],
    )
    .option(
      '--param <key=value>',
      'a workload parameter, value as JSON or text (repeatable)',
      collect,
      [] as string[],
    )
    .option(
      '--recipient <hex>',
      'also seal the outputs to this KEM public key (repeatable)',
      collect,
      [] as string[],
    )
    .requiredOption(
      '--out <dir>',
      'new folder: OUT/ROLE, OUT/sealed/, OUT/proof.json, OUT/records.json, OUT/plan.json',
    )
    .option('--grants-dir <dir>', 'where other owners put their grant files (default OUT/grants)')
    .option('--grant-timeout <s>', 'seconds to wait for them', '600')
    .option(
      '--kem-key-file <file>',
      'your KEM key file (firn artifact keygen); default one derived from the requester key, reopened by firn job result',
    )
    .option('--devnet <file>', 'devnet state file')
    .option('--rpc <url>', 'JSON-RPC URL')
    .option('--market <address>', 'job market contract')
    .option(
      '--key-file <file>',
      'requester key file (or env FIRN_REQUESTER_KEY; the devnet requester with --devnet)',
    )
    .option('--node <url>', 'this node (must host the app)')
    .option('--policy <file|dev|production>', 'attestation policy')
    .option('--sim-root <pem>', 'pin a simulated TEE root (dev only)')
    .option('--escrow <eth>', 'escrow in ether', '0.01')
    .option('--max-output <size>', MAX_OUTPUT_HELP)
    .option(
      '--also-rpc <url>',
      'another RPC endpoint that must agree on the registry (repeatable)',
      collect,
      [] as string[],
    )
    .option('--json', 'print the result as JSON')
    .action(async (o: RunOptions) => {
      const log = (l: string) => process.stderr.write(`${l}\n`);
      try {
        const r = await runCommand(o, o.json ? () => {} : log);
        if (o.json) printJson(r);
        else {
          process.stdout.write(`job ${r.jobId} on ${r.node}: proof verified\n`);
          for (const x of r.outputs)
            process.stdout.write(`  ${x.role}: ${x.path} (${x.size} bytes, ${x.contentType})\n`);
          process.stdout.write(`  proof: ${r.proof}\n  records: ${r.records} (${r.recordCount})\n`);
        }
      } catch (e) {
        printError(e, o.json === true);
        process.exitCode = 1;
      }
    });
}
