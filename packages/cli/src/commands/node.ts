import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  buildEnclaveBundle,
  createLogger,
  defaultBundlePath,
  type EnclaveLauncher,
  enclaveEnvFromHost,
  ensureRegistered,
  generateGramineManifest,
  measureEnclaveBundle,
  LivenessService,
  MAX_CONCURRENT_JOBS,
  MAX_RETENTION_SECONDS,
  MIN_OUTPUT_RETENTION_SECONDS,
  MIN_UPLOAD_RETENTION_SECONDS,
  NodeDaemon,
  parseS3Url,
  S3ArtifactStore,
  prepareGramineLaunch,
} from '@firn/node';
import { createFirnClients, NodeStatus, withdrawAllCredits } from '@firn/chain';
import { bytesToHex, type Hex, hexBytes, InvalidInputError } from '@firn/core';
import { GUEST_ENCLAVE_ENTRY, GUEST_IMAGE_DIR, isGuestMeasuredTee } from '@firn/enclave';
import type { Command } from 'commander';
import { etherArg, readKey, resolveChain } from '../chainArgs.ts';
import { byteSizeArg } from '../sizeArgs.ts';
import { type CollateralArgs, collateralSourceFromArgs } from '../collateralArgs.ts';
import { appBundle, spawnAppNodes } from './nodeApps.ts';
import { exitCodeOf, printError } from '../output.ts';

export interface NodeStartOptions extends CollateralArgs {
  rpc?: string;
  registry?: string;
  market?: string;
  deployment?: string;
  devnet?: string;
  dataDir: string;
  host: string;
  port: string;
  endpoint?: string;
  stake: string;
  tee: string;
  simPlatform?: string;
  simGpus?: string;
  bundle?: string;
  keyFile?: string;
  register: boolean;
  kmsUrl?: string;
  kmsAddress?: string;
  gramineSignKey?: string;
  gramineLibos?: string;
  gramineRuntimeDir?: string;
  gramineLibDir?: string[];
  gramineBin?: string;
  gramineSignBin?: string;
  /** Host these app folders (nodeApps.ts): one runs in this process, several spawn one node each. */
  app?: string[];
  /** `s3://bucket/prefix`: share artifacts through an S3-compatible store (the local folder stays). */
  artifactStore?: string;
  s3Endpoint?: string;
  s3Region?: string;
  maxJobs?: string;
  maxQueuedJobs?: string;
  jobTimeout?: string;
  sessionIdleTimeout?: string;
  /** The shortest claim timeout (and time before the deadline) this node accepts, seconds. */
  minClaimSeconds?: string;
  /** Jobs one requester may have running or queued (decision 1550). */
  maxJobsPerRequester?: string;
  /** Sessions one requester may have open or opening (decision 1550). */
  maxSessionsPerRequester?: string;
  /** Milliseconds a session's child polls after each answer, 0 to 1000 (decision 1800). */
  sessionPollMs?: string;
  /** Artifact store bytes per address (uploads, fetched inputs, job outputs): `4GiB`, `500MiB`, bytes. */
  quotaPerAddress?: string;
  /** Artifact store bytes in all. */
  quotaTotal?: string;
  /** Seconds an upload no job names is kept (decision 1603). */
  uploadRetention?: string;
  /** Seconds a final job's inputs and outputs are kept (decision 1603). */
  outputRetention?: string;
  /** Most ether one automatic resumeChallenges may pay (decision 1592); 0 never resumes. */
  maxResumeFee?: string;
}

// Moved to sizeArgs.ts (also parses --max-output); re-exported for the node's flags and tests.
export { byteSizeArg };

/** The storage quota flags (--quota-per-address, --quota-total), as NodeDaemonOptions.quotas. */
export function quotasFromArgs(o: NodeStartOptions): { perAddressBytes?: number; totalBytes?: number } {
  const perAddress = byteSizeArg(o.quotaPerAddress, '--quota-per-address');
  const total = byteSizeArg(o.quotaTotal, '--quota-total');
  if (perAddress !== undefined && total !== undefined && perAddress > total)
    throw new InvalidInputError(
      `--quota-per-address (${perAddress} bytes) must not exceed --quota-total (${total} bytes)`,
    );
  return {
    ...(perAddress === undefined ? {} : { perAddressBytes: perAddress }),
    ...(total === undefined ? {} : { totalBytes: total }),
  };
}

/** A positive whole number from a flag; E_INVALID_INPUT naming the flag otherwise. */
function positiveInt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,9}$/.test(v) || Number(v) === 0)
    throw new InvalidInputError(
      `${flag} must be a positive whole number (got ${JSON.stringify(v.slice(0, 32))})`,
    );
  return Number(v);
}

/** A whole number from `min` to `max` (decimal digits only); E_INVALID_INPUT naming the flag and the range otherwise. */
function intInRange(v: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = /^\d{1,9}$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= min && n <= max))
    throw new InvalidInputError(
      `${flag} must be a whole number from ${min} to ${max} (got ${JSON.stringify(v.slice(0, 32))})`,
    );
  return n;
}

/** Seconds a Node timer can hold (2^31-1 ms; past it a timer fires at once): about 24.8 days. */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/** A positive whole number of seconds a timer can hold; E_INVALID_INPUT naming the flag otherwise. */
function seconds(v: string | undefined, flag: string): number | undefined {
  const n = positiveInt(v, flag);
  if (n !== undefined && n > MAX_TIMER_SECONDS)
    throw new InvalidInputError(`${flag} must be at most ${MAX_TIMER_SECONDS} seconds (got ${n})`);
  return n;
}

/** Whole seconds from `min` to MAX_RETENTION_SECONDS from a flag; E_INVALID_INPUT naming the flag otherwise. */
function retentionSeconds(v: string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,10}$/.test(v) || Number(v) < min || Number(v) > MAX_RETENTION_SECONDS)
    throw new InvalidInputError(
      `${flag} must be whole seconds from ${min} to ${MAX_RETENTION_SECONDS} (got ${JSON.stringify(v.slice(0, 32))})`,
    );
  return Number(v);
}

/**
 * The retention flags (--upload-retention s, --output-retention s), as NodeDaemonOptions.retention
 * (decision 1603): each at least an hour (an upload intent's longest lifetime), at most 10 years.
 */
export function retentionFromArgs(o: Pick<NodeStartOptions, 'uploadRetention' | 'outputRetention'>): {
  uploadSeconds?: number;
  outputSeconds?: number;
} {
  const upload = retentionSeconds(o.uploadRetention, '--upload-retention', MIN_UPLOAD_RETENTION_SECONDS);
  const output = retentionSeconds(o.outputRetention, '--output-retention', MIN_OUTPUT_RETENTION_SECONDS);
  return {
    ...(upload === undefined ? {} : { uploadSeconds: upload }),
    ...(output === undefined ? {} : { outputSeconds: output }),
  };
}

/**
 * The scheduler flags (--max-jobs, --max-queued-jobs, --job-timeout s, --session-idle-timeout s,
 * --max-jobs-per-requester, --max-sessions-per-requester, --session-poll-ms), as
 * NodeDaemonOptions.scheduler.
 */
export function schedulerFromArgs(o: NodeStartOptions) {
  const maxJobs = positiveInt(o.maxJobs, '--max-jobs');
  // Each slot is allocated at start (and each running job is an ML child process).
  if (maxJobs !== undefined && maxJobs > MAX_CONCURRENT_JOBS)
    throw new InvalidInputError(`--max-jobs must be at most ${MAX_CONCURRENT_JOBS} (got ${maxJobs})`);
  const queued = o.maxQueuedJobs === '0' ? 0 : positiveInt(o.maxQueuedJobs, '--max-queued-jobs');
  const timeout = seconds(o.jobTimeout, '--job-timeout');
  const idle = seconds(o.sessionIdleTimeout, '--session-idle-timeout');
  const perRequesterJobs = positiveInt(o.maxJobsPerRequester, '--max-jobs-per-requester');
  const perRequesterSessions = positiveInt(o.maxSessionsPerRequester, '--max-sessions-per-requester');
  const pollMs = intInRange(o.sessionPollMs, '--session-poll-ms', 0, 1_000);
  return {
    ...(maxJobs === undefined ? {} : { maxConcurrentJobs: maxJobs }),
    ...(queued === undefined ? {} : { maxQueuedJobs: queued }),
    ...(timeout === undefined ? {} : { jobTimeoutMs: timeout * 1000 }),
    ...(idle === undefined ? {} : { sessionIdleMs: idle * 1000 }),
    ...(perRequesterJobs === undefined ? {} : { maxJobsPerRequester: perRequesterJobs }),
    ...(perRequesterSessions === undefined ? {} : { maxSessionsPerRequester: perRequesterSessions }),
    ...(pollMs === undefined ? {} : { sessionPollMs: pollMs }),
  };
}

/**
 * The enclave's environment and launcher for `--tee`: simulated (plain node, FIRN_SIM_*),
 * sgx-gramine (gramine-sgx with a manifest generated from the enclave image and signed; FIRN_TEE
 * fixed inside it), tdx (plain node in the TD, sealing key from the key broker its image pins;
 * `bundlePath` must be GUEST_ENCLAVE_ENTRY, decision 1730).
 * The key broker's identity is part of the measured image (`firn app build --key-broker`,
 * decision 1710): --kms-url only says where it listens, and --kms-address, if given, must equal the
 * pin. `pinned` is the image's pin (default: read from the image of `bundlePath`). Only
 * allow-listed variables are ever passed (see ENCLAVE_ENV_ALLOW_LIST): the flags below and
 * FIRN_LOG_LEVEL from the host's environment. Errors: E_INVALID_INPUT naming the flag to fix.
 */
export async function planEnclaveLaunch(
  o: NodeStartOptions,
  bundlePath: string,
  pinnedArg?: { keyBroker?: { address: string } },
): Promise<{ env: Record<string, string>; launcher?: EnclaveLauncher }> {
  // A TD measures its boot, not the image: only the image on its verified root filesystem runs.
  if (isGuestMeasuredTee(o.tee) && bundlePath !== GUEST_ENCLAVE_ENTRY)
    throw new InvalidInputError(
      `a ${o.tee} guest runs only the enclave image on its verified root filesystem, ${GUEST_ENCLAVE_ENTRY} (got ${bundlePath.slice(0, 256)})`,
    );
  const pinned =
    pinnedArg ?? (o.tee === 'sgx-gramine' ? {} : measureEnclaveBundle(bundlePath).image.manifest);
  const inherited = enclaveEnvFromHost();
  const env: Record<string, string> = { FIRN_TEE: o.tee };
  if (inherited.FIRN_LOG_LEVEL) env.FIRN_LOG_LEVEL = inherited.FIRN_LOG_LEVEL;
  const broker = pinned.keyBroker?.address.toLowerCase();
  if (o.kmsAddress !== undefined) {
    hexBytes(o.kmsAddress, '--kms-address', 20);
    if (broker === undefined)
      throw new InvalidInputError(
        '--kms-address: the enclave image pins no key broker; build it with --key-broker ADDRESS (the pin is measured)',
      );
    if (o.kmsAddress.toLowerCase() !== broker)
      throw new InvalidInputError(
        `--kms-address ${o.kmsAddress} is not the key broker the enclave image pins (${broker}); rebuild the image to change it`,
      );
  }
  if (o.kmsUrl !== undefined && o.tee !== 'sgx-gramine') {
    if (broker === undefined)
      throw new InvalidInputError(
        '--kms-url: the enclave image pins no key broker; build it with --key-broker ADDRESS (the pin is measured)',
      );
    env.FIRN_KMS_URL = o.kmsUrl;
  } else if (broker !== undefined && o.tee !== 'sgx-gramine')
    throw new InvalidInputError(
      `the enclave image pins key broker ${broker}: pass --kms-url URL to say where it listens`,
    );
  if (o.tee === 'simulated') {
    if (!o.simPlatform) throw new InvalidInputError('--sim-platform FILE is required for the simulated TEE');
    env.FIRN_SIM_PLATFORM = resolve(o.simPlatform);
    if (o.simGpus) env.FIRN_SIM_GPUS = resolve(o.simGpus);
    return { env };
  }
  if (o.tee === 'tdx') {
    if (!env.FIRN_KMS_URL)
      throw new InvalidInputError(
        'a TDX guest has no hardware sealing key: build its image with --key-broker ADDRESS (firn kms start) and pass --kms-url URL',
      );
    return { env };
  }
  if (o.tee === 'sgx-gramine') {
    // The GPU collector and the broker do not apply inside an SGX enclave (Gramine seals).
    const image = measureEnclaveBundle(bundlePath).image;
    const launcher = await prepareGramineLaunch({
      image: { dir: image.dir, manifest: image.manifest },
      dataDir: resolve(o.dataDir),
      passthroughEnv: env.FIRN_LOG_LEVEL ? ['FIRN_LOG_LEVEL'] : [],
      ...(o.gramineLibos ? { gramineLibos: o.gramineLibos } : {}),
      ...(o.gramineRuntimeDir ? { gramineRuntimeDir: o.gramineRuntimeDir } : {}),
      ...(o.gramineLibDir && o.gramineLibDir.length > 0 ? { libDirs: o.gramineLibDir } : {}),
      ...(o.gramineSignKey ? { signKey: o.gramineSignKey } : {}),
      ...(o.gramineSignBin ? { signExecutable: o.gramineSignBin } : {}),
      ...(o.gramineBin ? { executable: o.gramineBin } : {}),
    });
    return {
      env: { FIRN_TEE: 'sgx-gramine', ...(env.FIRN_LOG_LEVEL ? { FIRN_LOG_LEVEL: env.FIRN_LOG_LEVEL } : {}) },
      launcher,
    };
  }
  throw new InvalidInputError(`unknown --tee ${o.tee}: simulated | sgx-gramine | tdx`);
}

/** Start a node: enclave, API, and (unless --no-register) its on-chain registration. */
export async function startNodeCommand(o: NodeStartOptions): Promise<NodeDaemon> {
  const logger = createLogger({ component: 'node' });
  const stake = o.register ? etherArg(o.stake, '--stake') : 0n;
  const maxResumeFeeWei =
    o.maxResumeFee === undefined ? undefined : etherArg(o.maxResumeFee, '--max-resume-fee');
  if (o.tee === 'simulated') {
    // Read them here first: inside the enclave a bad file is only a vague startup failure.
    for (const [flag, f] of [
      ['--sim-platform', o.simPlatform],
      ['--sim-gpus', o.simGpus],
    ] as const) {
      if (f === undefined) continue;
      try {
        JSON.parse(readFileSync(f, 'utf8'));
      } catch (e) {
        const why =
          e instanceof SyntaxError ? 'is not JSON' : ((e as { code?: string }).code ?? 'cannot be read');
        throw new InvalidInputError(`${flag} ${f} ${why === 'ENOENT' ? 'does not exist' : why}`);
      }
    }
  }
  if (o.app && o.app.length > 0 && o.bundle) throw new InvalidInputError('pass --app or --bundle, not both');
  const bundlePath = isGuestMeasuredTee(o.tee)
    ? guestBundle(o)
    : o.app && o.app.length === 1
      ? await appBundle(o.app[0]!, o.dataDir)
      : await bundleOf(o.bundle);
  const { env: enclaveEnv, launcher } = await planEnclaveLaunch(o, bundlePath);
  const chain = o.register ? await resolveChain(o) : undefined;
  const operatorKey = chain
    ? readKey({ ...(o.keyFile ? { keyFile: o.keyFile } : {}), env: 'FIRN_OPERATOR_KEY' })
    : undefined;
  const collateralSource = collateralSourceFromArgs(o);
  const sharedArtifacts = sharedArtifactStoreOf(o);
  const node = new NodeDaemon({
    ...(sharedArtifacts === undefined ? {} : { sharedArtifacts }),
    ...(collateralSource === undefined ? {} : { collateralSource }),
    dataDir: resolve(o.dataDir),
    host: o.host,
    port: Number(o.port),
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    bundlePath,
    enclaveEnv,
    ...(launcher ? { enclaveLauncher: launcher } : {}),
    logger,
    ...(chain && operatorKey
      ? { chain: { rpcUrl: chain.rpcUrl, deployment: chain.deployment, operatorKey } }
      : {}),
    scheduler: schedulerFromArgs(o),
    quotas: quotasFromArgs(o),
    retention: retentionFromArgs(o),
    ...(o.minClaimSeconds === undefined
      ? {}
      : { jobPolicy: { minClaimSeconds: positiveInt(o.minClaimSeconds, '--min-claim-seconds')! } }),
  });
  await node.start();
  if (chain && operatorKey) {
    ensureRegistered(node, {
      rpcUrl: chain.rpcUrl,
      operatorKey,
      deployment: chain.deployment,
      stake,
      logger,
    })
      .then((status) => {
        // Active: prove liveness through the enclave and collect epoch rewards and payouts.
        if (status === NodeStatus.Active && chain.deployment.rewards !== undefined)
          new LivenessService(node, {
            rpcUrl: chain.rpcUrl,
            operatorKey,
            deployment: chain.deployment,
            logger,
            pollIntervalMs: 500,
            ...(maxResumeFeeWei === undefined ? {} : { maxResumeFeeWei }),
          }).start();
        // Refused: the stake was credited back (pull payment); take it.
        if (status === NodeStatus.Rejected)
          return withdrawAllCredits(
            createFirnClients(chain.rpcUrl, operatorKey, chain.deployment, { pollingIntervalMs: 500 }),
          ).then((got) =>
            logger.warn('registration refused; stake refund withdrawn', { wei: got.registry.toString() }),
          );
      })
      .catch((e: unknown) =>
        logger.error('registration failed', {
          code: (e as { code?: string }).code,
          message: (e as Error).message,
        }),
      );
  }
  return node;
}

/**
 * `--artifact-store s3://bucket/prefix [--s3-endpoint URL] [--s3-region R]`: the S3-compatible
 * store artifacts are shared through (credentials from the AWS SDK's usual sources, e.g.
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). Absent: the local folder only. E_INVALID_INPUT for
 * a malformed URL or --s3-endpoint without --artifact-store.
 */
export function sharedArtifactStoreOf(
  o: Pick<NodeStartOptions, 'artifactStore' | 's3Endpoint' | 's3Region'>,
) {
  if (!o.artifactStore) {
    if (o.s3Endpoint || o.s3Region)
      throw new InvalidInputError('--s3-endpoint and --s3-region need --artifact-store s3://bucket/prefix');
    return undefined;
  }
  return new S3ArtifactStore({
    ...parseS3Url(o.artifactStore),
    ...(o.s3Endpoint ? { endpoint: o.s3Endpoint } : {}),
    ...(o.s3Region ? { region: o.s3Region } : {}),
  });
}

/**
 * The enclave image entry of a measured guest (--tee tdx; decision 1730): always
 * GUEST_ENCLAVE_ENTRY on the guest's verified root filesystem, which the guest's measurement covers
 * (its dm-verity root hash is on the measured kernel command line). --bundle and --app are refused,
 * not compared: any other image would run with the genuine guest's measurement, and nothing is
 * built at start. Errors: E_INVALID_INPUT naming the fixed path, also when it holds no image.
 */
export function guestBundle(o: Pick<NodeStartOptions, 'tee' | 'bundle' | 'app'>): string {
  const build = `build it into the guest's verified root filesystem with \`firn node build-image --out ${GUEST_IMAGE_DIR}\` (or \`firn app build DIR --out ${GUEST_IMAGE_DIR}\`)`;
  if (o.bundle !== undefined)
    throw new InvalidInputError(
      `--bundle is not taken with --tee ${o.tee}: the guest runs only the enclave image at ${GUEST_ENCLAVE_ENTRY} (leave --bundle out; ${build})`,
    );
  if (o.app && o.app.length > 0)
    throw new InvalidInputError(
      `--app is not taken with --tee ${o.tee}: the guest runs only the enclave image at ${GUEST_ENCLAVE_ENTRY} (leave --app out; ${build})`,
    );
  if (!existsSync(GUEST_ENCLAVE_ENTRY))
    throw new InvalidInputError(`there is no enclave image at ${GUEST_ENCLAVE_ENTRY}: ${build}`);
  return GUEST_ENCLAVE_ENTRY;
}

/**
 * The enclave image entry: the built one (built when missing), or --bundle, which must exist (a
 * mistyped path must not build a fresh image beside it and run that).
 */
async function bundleOf(bundle: string | undefined): Promise<string> {
  const path = bundle ? resolve(bundle) : defaultBundlePath();
  if (existsSync(path)) return path;
  if (path !== resolve(defaultBundlePath()))
    throw new InvalidInputError(
      `--bundle ${path} does not exist (leave --bundle out to use the built image)`,
    );
  await buildEnclaveBundle(path);
  return path;
}

export function registerNode(program: Command): void {
  const node = program.command('node').description('run a firn compute node');
  node
    .command('build-image')
    .description(
      "build the first-party enclave image; --key-broker pins a key broker's identity in it (measured)",
    )
    .requiredOption('--out <dir>', 'image directory (replaced)')
    .option('--key-broker <address>', "the key broker's identity address (kms.json) the enclave seals under")
    .action(async (o: { out: string; keyBroker?: string }) => {
      try {
        if (o.keyBroker !== undefined) hexBytes(o.keyBroker, '--key-broker', 20);
        const b = await buildEnclaveBundle(resolve(o.out, 'app', 'enclave.mjs'), {
          ...(o.keyBroker === undefined ? {} : { keyBroker: o.keyBroker as Hex }),
        });
        process.stdout.write(`measurement ${bytesToHex(b.measurement)}\nentry ${b.path}\n`);
      } catch (e) {
        printError(e, false);
        process.exitCode = exitCodeOf(e);
      }
    });
  node
    .command('gramine-manifest')
    .description('print the Gramine manifest `node start --tee sgx-gramine` would sign (for review)')
    .option('--bundle <file>', 'enclave image entry (default: the built one)')
    .option('--gramine-libos <file>', "Gramine's libsysdb.so")
    .option('--gramine-runtime-dir <dir>', "Gramine's patched glibc runtime directory")
    .option(
      '--gramine-lib-dir <dir>',
      'system library directory trusted in the enclave (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .action(
      async (o: {
        bundle?: string;
        gramineLibos?: string;
        gramineRuntimeDir?: string;
        gramineLibDir: string[];
      }) => {
        try {
          const bundlePath = await bundleOf(o.bundle);
          const image = measureEnclaveBundle(bundlePath).image;
          const { text } = generateGramineManifest({
            image: { dir: image.dir, manifest: image.manifest },
            ...(o.gramineLibos ? { gramineLibos: o.gramineLibos } : {}),
            ...(o.gramineRuntimeDir ? { gramineRuntimeDir: o.gramineRuntimeDir } : {}),
            ...(o.gramineLibDir.length > 0 ? { libDirs: o.gramineLibDir } : {}),
          });
          process.stdout.write(text);
        } catch (e) {
          printError(e, false);
          process.exit(exitCodeOf(e));
        }
      },
    );
  node
    .command('start')
    .description('start the enclave, serve the node API, register on chain with stake')
    .option('--rpc <url>', 'JSON-RPC URL of the chain')
    .option('--registry <address>', 'registry contract')
    .option('--market <address>', 'job market contract')
    .option('--deployment <file>', 'deployment JSON (addresses, chainId, deployBlock)')
    .option('--devnet <file>', 'devnet state file')
    .option('--data-dir <dir>', 'where the node keeps its sealed keys and artifacts', '.firn/node')
    .option('--artifact-store <url>', 'also share artifacts through s3://bucket/prefix (checked by id)')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint for --artifact-store (default: AWS)')
    .option('--s3-region <region>', 'region for --artifact-store (default us-east-1)')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port (0 = any free port)', '0')
    .option('--endpoint <url>', 'public URL to register (default http://host:port)')
    .option('--stake <eth>', 'stake to lock, in ether', '1')
    .option('--tee <type>', 'TEE backend: simulated | sgx-gramine | tdx', 'simulated')
    .option('--sim-platform <file>', 'simulated platform file (simulated TEE only)')
    .option('--sim-gpus <file>', 'simulated GPUs attached to the simulated machine (JSON list)')
    .option(
      '--pccs <url>',
      'Intel PCS or PCCS base URL: attach DCAP collateral to evidence (or env FIRN_PCCS_URL)',
    )
    .option('--collateral-cache <dir>', 'keep fetched collateral on disk until its nextUpdate')
    .option(
      '--bundle <file>',
      `enclave program bundle (default: the built one; not with --tee tdx, which runs ${GUEST_ENCLAVE_ENTRY})`,
    )
    .option('--key-file <file>', 'operator private key file (or env FIRN_OPERATOR_KEY)')
    .option('--no-register', 'serve only; do not touch the chain')
    .option(
      '--kms-url <url>',
      'where the key broker the enclave image pins listens (required with --tee tdx)',
    )
    .option('--kms-address <address>', 'check: the key broker address the enclave image must pin')
    .option('--gramine-sign-key <file>', 'RSA-3072 enclave signing key for gramine-sgx-sign')
    .option('--gramine-libos <file>', "Gramine's libsysdb.so")
    .option('--gramine-runtime-dir <dir>', "Gramine's patched glibc runtime directory")
    .option(
      '--gramine-lib-dir <dir>',
      'system library directory trusted in the enclave (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--gramine-bin <file>', 'gramine-sgx executable (default: from PATH)')
    .option('--gramine-sign-bin <file>', 'gramine-sgx-sign executable (default: from PATH)')
    .option(
      '--app <dir>',
      "host this app folder (repeatable: one node per app); builds and runs the app's enclave image",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--max-jobs <n>', 'jobs run in the enclave at once (default 4)')
    .option('--max-queued-jobs <n>', 'jobs waiting for a slot; more get 429 + Retry-After (default 16)')
    .option('--job-timeout <seconds>', 'how long one job may run in the enclave (default 600)')
    .option(
      '--min-claim-seconds <seconds>',
      'refuse jobs whose claim timeout (or time left before the deadline) is shorter (default 60)',
    )
    .option(
      '--session-idle-timeout <seconds>',
      'idle warm sessions are closed and proved after this (default 300)',
    )
    .option(
      '--max-jobs-per-requester <n>',
      'jobs one requester may have running or queued; more get 429 + Retry-After (default 8)',
    )
    .option(
      '--max-sessions-per-requester <n>',
      'warm sessions one requester may have open or opening; more get 429 before any claim (default 4)',
    )
    .option(
      '--session-poll-ms <ms>',
      "how long a session's child keeps polling after each answer, 0 (off) to 1000; one core at most per answer (default 20)",
    )
    .option(
      '--quota-per-address <size>',
      "disk one address may use: its uploads, its jobs' fetched inputs and outputs, e.g. 4GiB (default 4GiB)",
    )
    .option('--quota-total <size>', 'disk the artifact store may use in all, e.g. 32GiB (default 32GiB)')
    .option(
      '--upload-retention <seconds>',
      'an uploaded artifact no job names is deleted this long after its upload, its quota released (default 86400; at least 3600)',
    )
    .option(
      '--output-retention <seconds>',
      "a job's inputs and outputs are deleted this long after the job is final (paid, failed, slashed) (default 604800; at least 3600)",
    )
    .option(
      '--max-resume-fee <ether>',
      "most ether paid (to governance's treasury), per resume, to be challenged again after the pool marked the node unresponsive (default 0.05; 0: never)",
    )
    .action(async (o: NodeStartOptions) => {
      try {
        if (isGuestMeasuredTee(o.tee)) guestBundle(o);
        if (o.app && o.app.length > 1) {
          const children = spawnAppNodes(process.argv.slice(2), o.app, o);
          const stopAll = () => {
            for (const c of children) c.kill('SIGTERM');
          };
          process.once('SIGINT', stopAll);
          process.once('SIGTERM', stopAll);
          return;
        }
        const n = await startNodeCommand(o);
        const stop = () => {
          void n.stop().finally(() => process.exit(0));
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      } catch (e) {
        printError(e, false);
        process.exit(exitCodeOf(e));
      }
    });
}
