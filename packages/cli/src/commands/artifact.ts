import { createReadStream, existsSync, linkSync, renameSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
// The padding helpers alone, not the whole SDK: `firn artifact` stays a small process.
import { paddedContentType, paddedLength, parsePaddedContentType } from '@firn/client/padding';
import { bytesToHex, FirnError, type Hex, hexBytes, InvalidInputError } from '@firn/core';
import {
  ArtifactHasher,
  generateKemKeyPair,
  openArtifactStream,
  readArtifactHeader,
  sealArtifactStream,
} from '@firn/crypto';
import type { Command } from 'commander';
import { printError, printJson } from '../output.ts';
import { readKemKeyPair, readKemPrivateKeyFile } from '../kemKeyFile.ts';
import { readUserFileSync } from '../readUserFile.ts';
import { checkOut, writeOutFileSync } from '../outFile.ts';
import { partialPathFor, removeAbandonedPartialsBeside } from '../partialFiles.ts';

/** Bytes per read and per emitted zero block while streaming. */
const STREAM_CHUNK = 1024 * 1024;

/**
 * `e` with `path` attached when it is a system error that names no file: Node raises read and
 * write errors on an open descriptor (EISDIR, EFBIG, ENOSPC, EIO) without one, and the CLI names
 * a path only from it.
 */
function naming(e: unknown, path: string): unknown {
  const c = e as { code?: unknown; path?: unknown } | null;
  if (c !== null && typeof c === 'object' && typeof c.code === 'string' && c.path === undefined)
    c.path = path;
  return e;
}

/** The file's plaintext followed, with `pad`, by the bit padding up to its Padmé bucket (streamed). */
async function* plaintextOf(path: string, size: number, pad: boolean): AsyncIterable<Uint8Array> {
  let n = 0;
  try {
    for await (const c of createReadStream(path, { highWaterMark: STREAM_CHUNK })) {
      n += (c as Buffer).length;
      yield c as Buffer;
    }
  } catch (e) {
    throw naming(e, path);
  }
  // The file changed while it was read: the padding (and the size the user was told) would lie.
  if (n !== size) throw new FirnError('E_CONFLICT', `${path} changed size while it was sealed`);
  if (!pad) return;
  let left = paddedLength(size) - size;
  const first = new Uint8Array(Math.min(left, STREAM_CHUNK));
  first[0] = 0x80;
  yield first;
  left -= first.length;
  const zeros = new Uint8Array(STREAM_CHUNK);
  while (left > 0) {
    const k = Math.min(left, STREAM_CHUNK);
    yield zeros.subarray(0, k);
    left -= k;
  }
}

/**
 * Remove bit padding from a plaintext stream in constant memory: a run of trailing zeros is kept
 * as a count, not a buffer, and released only when a non-zero byte follows it. At the end the last
 * non-zero byte must be the 0x80 marker (E_ARTIFACT_FORMAT otherwise), and it and the zeros are dropped.
 */
export async function* unpadStream(source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  let held: number | undefined; // the last non-zero byte seen, not yet released
  let zeros = 0; // zeros after it (or from the start), not yet released
  const zeroBlock = new Uint8Array(STREAM_CHUNK);
  function* release(): Generator<Uint8Array> {
    if (held !== undefined) yield Uint8Array.of(held);
    while (zeros > 0) {
      const k = Math.min(zeros, STREAM_CHUNK);
      yield zeroBlock.subarray(0, k);
      zeros -= k;
    }
    held = undefined;
  }
  for await (const c of source) {
    let last = c.length - 1;
    while (last >= 0 && c[last] === 0) last--;
    if (last < 0) {
      zeros += c.length;
      continue;
    }
    yield* release();
    if (last > 0) yield c.subarray(0, last);
    held = c[last];
    zeros = c.length - last - 1;
  }
  if (held !== 0x80) throw new FirnError('E_ARTIFACT_FORMAT', 'padded artifact has no padding marker');
}

/** Write a stream to `out` through a temp file beside it, renamed into place only when complete. */
async function writeStreamAtomically(
  out: string,
  source: AsyncIterable<Uint8Array>,
  force: boolean,
  onChunk?: (c: Uint8Array) => void,
): Promise<number> {
  // Partial files a killed writer left here go first (decision 1542); this one names its writer.
  removeAbandonedPartialsBeside(out);
  const tmp = partialPathFor(out);
  let size = 0;
  async function* counted() {
    for await (const c of source) {
      size += c.length;
      onChunk?.(c);
      yield c;
    }
  }
  // A signal (ctrl-C, SIGTERM, a closed terminal) ends the process without the catch below: the
  // temp file (partly written plaintext, for open) is removed first, then the process ends by it.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const onSignal = (s: NodeJS.Signals) => {
    rmSync(tmp, { force: true });
    for (const t of signals) process.off(t, onSignal);
    process.kill(process.pid, s);
  };
  for (const s of signals) process.on(s, onSignal);
  try {
    // Each piece is written out before the next is asked for: one piece in flight keeps memory
    // flat whatever the file size (Readable.from would queue pieces ahead of the disk).
    const fh = await open(tmp, 'wx', 0o600);
    try {
      for await (const c of counted())
        for (let o = 0; o < c.length; )
          o += (await fh.write(c, o, c.length - o).catch((e: unknown) => Promise.reject(naming(e, out))))
            .bytesWritten;
    } finally {
      await fh.close();
    }
    // A file that appeared meanwhile is not replaced without --force: link(2) refuses (EEXIST)
    // where a check then rename would leave a window (decision 1666).
    if (force) {
      if (isDirectory(out))
        throw new InvalidInputError(`--out ${out} is a directory: name a file (e.g. in it)`);
      renameSync(tmp, out);
    } else {
      try {
        linkSync(tmp, out);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'EEXIST')
          throw new FirnError('E_CONFLICT', `${out} already exists; pass --force to replace it`);
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw naming(e, out);
        // No hard links on this filesystem: re-checked right before the rename.
        if (existsSync(out))
          throw new FirnError('E_CONFLICT', `${out} already exists; pass --force to replace it`);
        renameSync(tmp, out);
      }
      rmSync(tmp, { force: true });
    }
    return size;
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}

/** The environment variables that hold the user's chain keys (never a KEM public key). */
const PRIVATE_KEY_ENVS = ['FIRN_REQUESTER_KEY', 'FIRN_OWNER_KEY', 'FIRN_OPERATOR_KEY', 'FIRN_VERIFIER_KEY'];

/**
 * Refuse a --recipient that is a private key this command can see: one of PRIVATE_KEY_ENVS (the
 * requester's chain key pasted instead of a KEM public key). Sealing to it would hand the data to
 * whoever holds that value as an X25519 private key, and the recipient's own key could not open
 * it. A KEM private key from a keygen file cannot be told from a public one by its bytes alone;
 * `--recipient` takes the `publicKey` field (decision 1668).
 */
function refuseKnownPrivateKeys(recipients: Uint8Array[]): void {
  for (const env of PRIVATE_KEY_ENVS) {
    const v = process.env[env]?.trim();
    if (!v) continue;
    const hex = (v.startsWith('0x') ? v.slice(2) : v).toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(hex)) continue;
    for (const [i, r] of recipients.entries())
      if (bytesToHex(r).replace(/^0x/, '').toLowerCase() === hex)
        throw new InvalidInputError(
          `--recipient ${i + 1} is the private key in ${env}, not a KEM public key: pass the publicKey of a firn artifact keygen file (or the enclave's KEM key)`,
        );
  }
}

/** Whether `p` is a directory (false when it does not exist or cannot be stat'ed). */
function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Seal a file to one or more X25519 recipients; returns the artifact id and size. Streamed: the
 * file is read, encrypted and written one chunk at a time, so memory stays flat whatever its size.
 * With `pad`, the plaintext is padded inside the encryption to a Padmé size bucket
 * (packages/client/src/padding.ts), so the sealed size reveals only the bucket; `artifact open`
 * removes the padding. The output is written to a temp file and renamed into place when complete.
 */
export async function artifactSeal(o: {
  in: string;
  out: string;
  recipients: string[];
  contentType: string;
  pad?: boolean;
  force?: boolean;
}) {
  if (o.recipients.length === 0)
    throw new InvalidInputError('pass at least one --recipient KEM public key (hex)');
  // Only --pad may set the padding parameter: open strips padding wherever it says so.
  if (parsePaddedContentType(o.contentType).padded)
    throw new InvalidInputError(
      '--content-type carries firn-pad=padme: drop it (pass --pad to pad); artifact open would cut the file',
    );
  const recipients = o.recipients.map((r) => hexBytes(r, 'recipient', 32));
  refuseKnownPrivateKeys(recipients);
  checkOut(o.out, o.force);
  const size = statSync(o.in).size;
  const hasher = new ArtifactHasher();
  const written = await writeStreamAtomically(
    o.out,
    sealArtifactStream(plaintextOf(o.in, size, o.pad === true), {
      recipients,
      contentType: o.pad ? paddedContentType(o.contentType) : o.contentType,
    }),
    o.force === true,
    (c) => hasher.update(c),
  );
  return { id: hasher.digest(), size: written, padded: o.pad === true };
}

/**
 * Open a sealed artifact with a KEM private key (JSON key file from `firn artifact keygen`).
 * Streamed in constant memory; the plaintext is written to a temp file and renamed into place
 * only once the whole artifact verified, so a truncated or tampered artifact leaves no output.
 */
export async function artifactOpen(o: { in: string; out: string; keyFile: string; force?: boolean }) {
  const kemPrivateKey = readKemPrivateKeyFile(o.keyFile, '--key-file');
  checkOut(o.out, o.force);
  // The header's stream is read only to the header's end: close its descriptor here, not at exit.
  const headStream = createReadStream(o.in, { highWaterMark: 64 * 1024 });
  const header = await readArtifactHeader(headStream)
    .catch((e: unknown) => Promise.reject(naming(e, o.in)))
    .finally(() => headStream.destroy());
  const t = parsePaddedContentType(header.contentType);
  const hasher = new ArtifactHasher();
  async function* sealed() {
    try {
      for await (const c of createReadStream(o.in, { highWaterMark: 256 * 1024 })) {
        hasher.update(c as Buffer);
        yield c as Buffer;
      }
    } catch (e) {
      throw naming(e, o.in);
    }
  }
  const plain = openArtifactStream(sealed(), { kemPrivateKey });
  const size = await writeStreamAtomically(o.out, t.padded ? unpadStream(plain) : plain, o.force === true);
  return { id: hasher.digest(), contentType: t.padded ? t.contentType : header.contentType, size };
}

/** Write a fresh X25519 KEM key pair as JSON (mode 0600); never over an existing file without `force`. */
export async function artifactKeygen(o: { out: string; force?: boolean }) {
  const whyKeep = 'replacing a key makes everything sealed to it unrecoverable';
  // A folder or an existing key is refused before a key is made (checkOut).
  checkOut(o.out, o.force, { whyKeep });
  const k = await generateKemKeyPair();
  const json = JSON.stringify({ privateKey: bytesToHex(k.privateKey), publicKey: bytesToHex(k.publicKey) });
  // Written beside it and linked or renamed: the old key is replaced whole or not at all, and the
  // partial holding the private key is removed on any failure.
  writeOutFileSync(o.out, json, { mode: 0o600, whyKeep, ...(o.force ? { force: true } : {}) });
  return { publicKey: bytesToHex(k.publicKey) };
}

export interface ArtifactGrantOptions {
  plan: string;
  role: string;
  sealed: string;
  /** The owner's KEM key file (firn artifact keygen): unwraps the artifact's data key. */
  kemKeyFile: string;
  /** The owner's secp256k1 key file (signs the grant; or env FIRN_OWNER_KEY). */
  ownerKeyFile?: string;
  out: string;
  /** Refuse unless the job's outputs are also sealed to this owner's KEM key. */
  requireRecipient?: boolean;
  devnet?: string;
  rpc?: string;
  market?: string;
  deployment?: string;
  policy?: string;
  simRoot?: string;
  /** More RPC endpoints that must agree with the first on every registry read. */
  alsoRpc?: string[];
}

/**
 * `firn artifact grant`: as the owner of one input of someone else's job, check the job plan
 * against the chain and the enclave (attested here with a fresh nonce under this owner's policy),
 * then write a grant of this artifact to that enclave for that job only (see grantForJob for every
 * check). Give the grant file to the requester (`firn run --grants-dir`). The key files never leave.
 */
export async function artifactGrant(o: ArtifactGrantOptions) {
  // The requester SDK is loaded only here, so `artifact seal|open|keygen` stay a small process.
  const { devnetRoots, grantForJob, MAX_JOB_PLAN_BYTES, parseJobPlan } = await import('@firn/client');
  // The --out is checked before the chain and the enclave are asked anything.
  checkOut(o.out, false);
  const { readKey, resolveChain } = await import('../chainArgs.ts');
  const { loadPolicy, loadSimRoots } = await import('../policyArgs.ts');
  const planText = readUserFileSync(o.plan, '--plan', MAX_JOB_PLAN_BYTES).toString('utf8');
  const { namingFile } = await import('./infer.ts');
  const plan = namingFile('--plan', o.plan, () => parseJobPlan(planText));
  const chain = await resolveChain({
    ...(o.rpc ? { rpc: o.rpc } : {}),
    ...(o.market ? { market: o.market } : {}),
    ...(o.deployment ? { deployment: o.deployment } : {}),
    ...(o.devnet ? { devnet: o.devnet } : {}),
  });
  const state = chain.devnet as Partial<import('@firn/client').DevnetStateFile> | undefined;
  const pinned = state?.simulatedRootPem
    ? devnetRoots(state as import('@firn/client').DevnetStateFile)
    : { roots: {}, gpuRoots: {} };
  const kem = readKemKeyPair(o.kemKeyFile, '--kem-key-file');
  const grant = await grantForJob({
    rpcUrl: chain.rpcUrl,
    deployment: chain.deployment,
    plan,
    role: o.role,
    // The largest buffer Node reads at once: a sealed input of `firn run` has the same bound.
    sealed: readUserFileSync(o.sealed, '--sealed', 2 * 1024 * 1024 * 1024 - 1),
    kemPrivateKey: kem.privateKey,
    ownerKey: readKey({
      ...(o.ownerKeyFile ? { keyFile: o.ownerKeyFile } : {}),
      env: 'FIRN_OWNER_KEY',
    }) as Hex,
    policy: loadPolicy(o.policy, o.devnet ? 'dev' : 'production'),
    roots: o.simRoot ? loadSimRoots(o.simRoot) : pinned.roots,
    gpuRoots: pinned.gpuRoots,
    ...(o.alsoRpc && o.alsoRpc.length > 0 ? { extraRpcUrls: o.alsoRpc } : {}),
    ...(o.requireRecipient ? { requireRecipient: kem.publicKey } : {}),
  });
  writeOutFileSync(o.out, `${JSON.stringify(grant)}\n`, { mode: 0o644 });
  return {
    grant: o.out,
    jobId: plan.jobId,
    enclaveId: plan.enclaveId,
    app: plan.app,
    role: o.role,
    artifactId: grant.artifactId,
    expiresAt: grant.expiresAt,
  };
}

export function registerArtifact(program: Command): void {
  const a = program.command('artifact').description('sealed artifacts');
  // One error format per output mode: these commands print JSON results, so --json selects JSON
  // errors too; without it errors are one text line on stderr like every other command.
  const run = (f: () => Promise<unknown>, json: boolean | undefined) =>
    f().then(printJson, (e: unknown) => {
      printError(e, json === true);
      process.exitCode = 1;
    });
  a.command('keygen')
    .description('create an X25519 KEM key pair file')
    .requiredOption('--out <file>', 'key file to write (refused if it exists)')
    .option(
      '--force',
      'replace an existing key file (everything sealed to the old key becomes unrecoverable)',
    )
    .option('--json', 'errors as JSON too')
    .action((o: { out: string; force?: boolean; json?: boolean }) => run(() => artifactKeygen(o), o.json));
  a.command('seal <in>')
    .description('seal a file to KEM public keys')
    .requiredOption('--out <file>', 'sealed output')
    .requiredOption('--recipient <hex...>', 'recipient KEM public key(s), hex')
    .option('--content-type <type>', 'content type', 'application/octet-stream')
    .option('--pad', 'pad the plaintext (inside the encryption) to a Padmé size bucket, at least 4 KiB')
    .option('--force', 'replace --out if it exists')
    .option('--json', 'errors as JSON too')
    .action(
      (
        inp: string,
        o: {
          out: string;
          recipient: string[];
          contentType: string;
          pad?: boolean;
          force?: boolean;
          json?: boolean;
        },
      ) =>
        run(
          () =>
            artifactSeal({
              in: inp,
              out: o.out,
              recipients: o.recipient,
              contentType: o.contentType,
              pad: o.pad === true,
              force: o.force === true,
            }),
          o.json,
        ),
    );
  a.command('grant')
    .description(
      "grant your sealed artifact to the enclave of another requester's job, after checking the job plan against the chain and attesting the enclave",
    )
    .requiredOption('--plan <file>', 'the job plan (plan.json from the requester)')
    .requiredOption('--role <role>', 'the input role your artifact fills')
    .requiredOption('--sealed <file>', 'your sealed artifact (sealed to your KEM key)')
    .requiredOption('--kem-key-file <file>', 'your KEM key file (firn artifact keygen)')
    .option('--owner-key-file <file>', 'your signing key file (or env FIRN_OWNER_KEY); needs no funds')
    .requiredOption('--out <file>', 'grant file to write (hand it to the requester)')
    .option('--require-recipient', 'refuse unless the job also seals its outputs to your KEM key')
    .option('--devnet <file>', 'devnet state file')
    .option('--deployment <file>', 'deployment JSON')
    .option('--rpc <url>', 'JSON-RPC URL')
    .option('--market <address>', 'job market contract')
    .option('--policy <file|dev|production>', 'your attestation policy')
    .option('--sim-root <pem>', 'pin a simulated TEE root (dev only)')
    .option(
      '--also-rpc <url>',
      'another RPC endpoint that must agree on the registry (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--json', 'errors as JSON too')
    .action((o: ArtifactGrantOptions & { json?: boolean }) => run(() => artifactGrant(o), o.json));
  a.command('open <in>')
    .description('open a sealed artifact with a KEM key file')
    .requiredOption('--out <file>', 'plaintext output')
    .requiredOption('--key-file <file>', 'KEM key file (from keygen)')
    .option('--force', 'replace --out if it exists')
    .option('--json', 'errors as JSON too')
    .action((inp: string, o: { out: string; keyFile: string; force?: boolean; json?: boolean }) =>
      run(() => artifactOpen({ in: inp, out: o.out, keyFile: o.keyFile, force: o.force === true }), o.json),
    );
}
