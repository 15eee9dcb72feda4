import { readFileSync, statSync, writeFileSync } from 'node:fs';
import {
  type DevnetStateFile,
  devnetRoots,
  grantForJob,
  MAX_JOB_PLAN_BYTES,
  openOutput,
  paddedContentType,
  padPlaintext,
  parseJobPlan,
  parsePaddedContentType,
} from '@firn/client';
import { bytesToHex, type Hex, hexBytes, InvalidInputError, TooLargeError } from '@firn/core';
import { artifactId, generateKemKeyPair, sealArtifact } from '@firn/crypto';
import type { Command } from 'commander';
import { readKey, resolveChain } from '../chainArgs.ts';
import { printError, printJson } from '../output.ts';
import { loadPolicy, loadSimRoots } from '../policyArgs.ts';

/**
 * Seal a file to one or more X25519 recipients; returns the artifact id and size. With `pad`, the
 * plaintext is padded inside the encryption to a Padmé size bucket (packages/client/src/padding.ts),
 * so the sealed size reveals only the bucket; `artifact open` removes the padding.
 */
export async function artifactSeal(o: {
  in: string;
  out: string;
  recipients: string[];
  contentType: string;
  pad?: boolean;
}) {
  if (o.recipients.length === 0)
    throw new InvalidInputError('pass at least one --recipient KEM public key (hex)');
  // Only --pad may set the padding parameter: open strips padding wherever it says so.
  if (parsePaddedContentType(o.contentType).padded)
    throw new InvalidInputError(
      '--content-type carries firn-pad=padme: drop it (pass --pad to pad); artifact open would cut the file',
    );
  const plain = new Uint8Array(readFileSync(o.in));
  const sealed = await sealArtifact(o.pad ? padPlaintext(plain) : plain, {
    recipients: o.recipients.map((r) => hexBytes(r, 'recipient', 32)),
    contentType: o.pad ? paddedContentType(o.contentType) : o.contentType,
  });
  writeFileSync(o.out, sealed);
  return { id: artifactId(sealed), size: sealed.length, padded: o.pad === true };
}

function readKemKey(file: string): Uint8Array {
  const o = JSON.parse(readFileSync(file, 'utf8')) as { privateKey?: unknown };
  return hexBytes(o.privateKey, 'privateKey', 32);
}

/** Open a sealed artifact with a KEM private key (JSON key file from `firn artifact keygen`). */
export async function artifactOpen(o: { in: string; out: string; keyFile: string }) {
  const sealed = new Uint8Array(readFileSync(o.in));
  const r = await openOutput(sealed, readKemKey(o.keyFile));
  writeFileSync(o.out, r.bytes);
  return { id: artifactId(sealed), contentType: r.contentType, size: r.bytes.length };
}

/** Write a fresh X25519 KEM key pair as JSON (mode 0600). */
export async function artifactKeygen(o: { out: string }) {
  const k = await generateKemKeyPair();
  writeFileSync(
    o.out,
    JSON.stringify({ privateKey: bytesToHex(k.privateKey), publicKey: bytesToHex(k.publicKey) }),
    // Never over an existing key: everything sealed to it would be lost.
    { mode: 0o600, flag: 'wx' },
  );
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
  const planSize = statSync(o.plan).size;
  if (planSize > MAX_JOB_PLAN_BYTES) throw new TooLargeError('job plan', planSize, MAX_JOB_PLAN_BYTES);
  const plan = parseJobPlan(readFileSync(o.plan, 'utf8'));
  const chain = await resolveChain({
    ...(o.rpc ? { rpc: o.rpc } : {}),
    ...(o.market ? { market: o.market } : {}),
    ...(o.deployment ? { deployment: o.deployment } : {}),
    ...(o.devnet ? { devnet: o.devnet } : {}),
  });
  const state = chain.devnet as Partial<DevnetStateFile> | undefined;
  const pinned = state?.simulatedRootPem
    ? devnetRoots(state as DevnetStateFile)
    : { roots: {}, gpuRoots: {} };
  const kem = JSON.parse(readFileSync(o.kemKeyFile, 'utf8')) as { privateKey?: unknown; publicKey?: unknown };
  const grant = await grantForJob({
    rpcUrl: chain.rpcUrl,
    deployment: chain.deployment,
    plan,
    role: o.role,
    sealed: new Uint8Array(readFileSync(o.sealed)),
    kemPrivateKey: hexBytes(kem.privateKey, 'privateKey', 32),
    ownerKey: readKey({
      ...(o.ownerKeyFile ? { keyFile: o.ownerKeyFile } : {}),
      env: 'FIRN_OWNER_KEY',
    }) as Hex,
    policy: loadPolicy(o.policy, o.devnet ? 'dev' : 'production'),
    roots: o.simRoot ? loadSimRoots(o.simRoot) : pinned.roots,
    gpuRoots: pinned.gpuRoots,
    ...(o.alsoRpc && o.alsoRpc.length > 0 ? { extraRpcUrls: o.alsoRpc } : {}),
    ...(o.requireRecipient ? { requireRecipient: hexBytes(kem.publicKey, 'publicKey', 32) } : {}),
  });
  writeFileSync(o.out, `${JSON.stringify(grant)}\n`, { flag: 'wx' });
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
  const run = (f: () => Promise<unknown>, json = true) =>
    f().then(printJson, (e: unknown) => {
      printError(e, json);
      process.exitCode = 1;
    });
  a.command('keygen')
    .description('create an X25519 KEM key pair file')
    .requiredOption('--out <file>', 'key file to write')
    .action((o: { out: string }) => run(() => artifactKeygen(o)));
  a.command('seal <in>')
    .description('seal a file to KEM public keys')
    .requiredOption('--out <file>', 'sealed output')
    .requiredOption('--recipient <hex...>', 'recipient KEM public key(s), hex')
    .option('--content-type <type>', 'content type', 'application/octet-stream')
    .option('--pad', 'pad the plaintext (inside the encryption) to a Padmé size bucket, at least 4 KiB')
    .action((inp: string, o: { out: string; recipient: string[]; contentType: string; pad?: boolean }) =>
      run(() =>
        artifactSeal({
          in: inp,
          out: o.out,
          recipients: o.recipient,
          contentType: o.contentType,
          pad: o.pad === true,
        }),
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
    .action((o: ArtifactGrantOptions) => run(() => artifactGrant(o)));
  a.command('open <in>')
    .description('open a sealed artifact with a KEM key file')
    .requiredOption('--out <file>', 'plaintext output')
    .requiredOption('--key-file <file>', 'KEM key file (from keygen)')
    .action((inp: string, o: { out: string; keyFile: string }) =>
      run(() => artifactOpen({ in: inp, out: o.out, keyFile: o.keyFile })),
    );
}
