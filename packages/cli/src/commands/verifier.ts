import { createKdsClient, type KdsClient } from '@firn/attestation';
import { createFirnClients, isVerifier, joinVerifierSet, requireWallet } from '@firn/chain';
import { InvalidInputError } from '@firn/core';
import { createLogger } from '@firn/node';
import { VerifierDaemon } from '@firn/verifier';
import type { Command } from 'commander';
import { etherArg, readKey, resolveChain } from '../chainArgs.ts';
import {
  type CollateralArgs,
  collateralSourceFromArgs,
  type GpuSourceArgs,
  gpuSourcesFromArgs,
} from '../collateralArgs.ts';
import { exitCodeOf, printError } from '../output.ts';
import { loadPolicy, loadSimGpuRoots, loadSimRoots } from '../policyArgs.ts';

export interface VerifierStartOptions extends CollateralArgs, GpuSourceArgs {
  rpc?: string;
  registry?: string;
  market?: string;
  deployment?: string;
  devnet?: string;
  keyFile?: string;
  policy?: string;
  simRoot?: string;
  simGpuRoot?: string;
  pollMs: string;
  /** Where the verifier keeps its chain cursors (resumes from them after a restart). */
  dataDir?: string;
  /** AMD KDS (or a mirror) base URL for SEV-SNP collateral (VCEK, chain, CRL). */
  kds?: string;
  /** Keep KDS answers on disk (each re-verified on use). */
  kdsCache?: string;
  /** Join the verifier set with this stake (ether) when the account is not a member yet. */
  stake?: string;
  /** Send requests to nodes whose endpoints are loopback or private addresses (a devnet). */
  allowPrivateEndpoints?: boolean;
}

/**
 * The SEV-SNP collateral source of `--kds URL` (or env FIRN_KDS_URL) with `--kds-cache DIR`, as
 * `--pccs` is for DCAP: the verifier's own VCEK, chain and CRL then win over a node's attachment
 * (decision 1220). Undefined without a URL. Errors: E_INVALID_INPUT for a URL that is not http(s).
 */
export function kdsSourceFromArgs(o: { kds?: string; kdsCache?: string }): KdsClient | undefined {
  const url = o.kds ?? process.env.FIRN_KDS_URL;
  if (url === undefined || url === '') {
    if (o.kdsCache !== undefined) throw new InvalidInputError('--kds-cache needs --kds URL');
    return undefined;
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidInputError(`--kds must be an http(s) URL, got ${JSON.stringify(url.slice(0, 200))}`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new InvalidInputError(`--kds must be an http(s) URL, got ${u.protocol}`);
  return createKdsClient({ baseUrl: url, ...(o.kdsCache === undefined ? {} : { cacheDir: o.kdsCache }) });
}

export async function startVerifierCommand(o: VerifierStartOptions): Promise<VerifierDaemon> {
  // The key is local: a wrong --key-file is named before the RPC is asked anything.
  const verifierKey = readKey({ ...(o.keyFile ? { keyFile: o.keyFile } : {}), env: 'FIRN_VERIFIER_KEY' });
  const chain = await resolveChain(o);
  const logger = createLogger({ component: 'verifier' });
  const collateralSource = collateralSourceFromArgs(o);
  const sevSnpCollateral = kdsSourceFromArgs(o);
  const clients = createFirnClients(chain.rpcUrl, verifierKey, chain.deployment, { pollingIntervalMs: 200 });
  const me = requireWallet(clients).account.address;
  if (!(await isVerifier(clients, me))) {
    if (o.stake === undefined)
      throw new InvalidInputError(
        `${me} is not in the verifier set and could not vote: once governance admitted it (firn gov admit-verifier), pass --stake ETH to join`,
      );
    await joinVerifierSet(clients, etherArg(o.stake, '--stake'));
    logger.info('joined the verifier set', { verifier: me, stake: o.stake });
  }
  const daemon = new VerifierDaemon({
    rpcUrl: chain.rpcUrl,
    verifierKey,
    deployment: chain.deployment,
    policy: loadPolicy(o.policy),
    roots: loadSimRoots(o.simRoot),
    gpuRoots: loadSimGpuRoots(o.simGpuRoot),
    ...(collateralSource === undefined ? {} : { collateralSource }),
    ...(sevSnpCollateral === undefined ? {} : { sevSnpCollateral }),
    ...gpuSourcesFromArgs(o),
    logger,
    pollIntervalMs: Number(o.pollMs),
    ...(o.dataDir === undefined ? {} : { stateDir: o.dataDir }),
    allowPrivateEndpoints: o.allowPrivateEndpoints === true,
  });
  daemon.start();
  return daemon;
}

export function registerVerifier(program: Command): void {
  const v = program.command('verifier').description('run a firn verifier');
  v.command('start')
    .description('watch registrations, re-verify each with a fresh nonce, vote on chain')
    .option('--rpc <url>', 'JSON-RPC URL of the chain')
    .option('--registry <address>', 'registry contract')
    .option('--market <address>', 'job market contract')
    .option('--deployment <file>', 'deployment JSON')
    .option('--devnet <file>', 'devnet state file')
    .option('--key-file <file>', 'verifier private key file (or env FIRN_VERIFIER_KEY)')
    .option('--policy <policy>', 'dev | production | FILE', 'production')
    .option('--sim-root <file>', 'pin a simulated TEE root (PEM); only a dev policy accepts it')
    .option('--sim-gpu-root <file>', 'pin a simulated GPU device root (PEM); only a dev policy accepts it')
    .option('--pccs <url>', 'Intel PCS or PCCS base URL for DCAP collateral (or env FIRN_PCCS_URL)')
    .option('--collateral-cache <dir>', 'keep fetched collateral on disk until its nextUpdate')
    .option(
      '--kds <url>',
      'AMD KDS (https://kdsintf.amd.com) or a mirror for SEV-SNP VCEKs, chains and CRLs (or env FIRN_KDS_URL); its answers win over what a node attaches',
    )
    .option('--kds-cache <dir>', 'keep KDS answers on disk (each is re-verified on use)')
    .option(
      '--rim-service <url>',
      "GPU RIMs from this RIM service (NVIDIA's: https://rim.attestation.nvidia.com)",
    )
    .option('--rim-dir <dir>', 'GPU RIMs named <id>.xml, read before asking the RIM service')
    .option('--ocsp <url>', "OCSP responder for GPU certificates (NVIDIA's: https://ocsp.ndis.nvidia.com/)")
    .option(
      '--stake <eth>',
      'join the verifier set with this stake, in ether, if not a member (after gov admit-verifier)',
    )
    .option(
      '--allow-private-endpoints',
      'send requests to nodes whose endpoints are loopback, private or link-local addresses (a devnet on this machine); without it such a registration is refused and gets no request',
    )
    .option('--poll-ms <ms>', 'chain polling interval', '500')
    .option(
      '--data-dir <dir>',
      'where the verifier keeps its chain cursors (resumed after a restart)',
      '.firn/verifier',
    )
    .action(async (o: VerifierStartOptions) => {
      try {
        const d = await startVerifierCommand(o);
        const stop = () => {
          d.stop();
          process.exit(0);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      } catch (e) {
        printError(e, false);
        process.exit(exitCodeOf(e));
      }
    });
}
