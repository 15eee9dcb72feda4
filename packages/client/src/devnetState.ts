import { certificateDer } from '@firn/attestation';
import { readFileSync } from 'node:fs';
import type { FirnDeployment } from '@firn/chain';
import { FirnError, type Hex, hexBytes } from '@firn/core';

/** What `firn devnet --state-file` writes and `--devnet STATE.json` reads. */
export interface DevnetStateFile {
  rpcUrl: string;
  chainId: number;
  contracts: {
    registry: Hex;
    verifierSet: Hex;
    jobMarket: Hex;
    dataLedger: Hex;
    /** The reward pool and the timelock that owns every contract (issue 9). */
    rewards?: Hex;
    timelock?: Hex;
  };
  deployBlock: string | number;
  simulatedRootPem: string;
  /** The devnet's simulated GPU device root, when a node has a simulated GPU. */
  simulatedGpuRootPem?: string;
  measurement: Hex;
  nodes: { url: string; enclaveId: Hex; enclaveAddress: Hex; pid: number }[];
  verifiers: { address: Hex; pid: number }[];
  /** The requester's X25519 KEM key the devnet demo seals outputs to (the dashboard opens them with it). */
  requesterKem?: { privateKey: Hex; publicKey: Hex };
  accounts: { requester: { address: Hex; privateKey: Hex } } & Record<
    string,
    { address: Hex; privateKey: Hex }
  >;
}

const MAX_STATE_BYTES = 1024 * 1024;

/** Read and check a devnet state file (size-capped; addresses and keys must be well-formed hex). */
export function loadDevnetState(path: string): DevnetStateFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new FirnError('E_NOT_FOUND', `cannot read devnet state file ${path}`);
  }
  if (text.length > MAX_STATE_BYTES)
    throw new FirnError('E_TOO_LARGE', `devnet state file ${path} too large`);
  let s: DevnetStateFile;
  try {
    s = JSON.parse(text) as DevnetStateFile;
  } catch {
    throw new FirnError('E_PARSE', `devnet state file ${path} is not JSON`);
  }
  if (
    typeof s !== 'object' ||
    s === null ||
    typeof s.rpcUrl !== 'string' ||
    typeof s.chainId !== 'number' ||
    typeof s.contracts !== 'object' ||
    s.contracts === null
  )
    throw new FirnError('E_PARSE', `devnet state file ${path} lacks rpcUrl, chainId or contracts`);
  for (const k of ['registry', 'verifierSet', 'jobMarket', 'dataLedger'] as const)
    hexBytes(s.contracts[k], `contracts.${k}`, 20);
  for (const k of ['rewards', 'timelock'] as const)
    if (s.contracts[k] !== undefined) hexBytes(s.contracts[k], `contracts.${k}`, 20);
  hexBytes(s.accounts?.requester?.privateKey, 'accounts.requester.privateKey', 32);
  return s;
}

/** The FirnDeployment of a devnet state. */
export function deploymentFromState(state: DevnetStateFile): FirnDeployment {
  return {
    chainId: state.chainId,
    registry: state.contracts.registry,
    verifierSet: state.contracts.verifierSet,
    jobMarket: state.contracts.jobMarket,
    dataLedger: state.contracts.dataLedger,
    ...(state.contracts.rewards === undefined ? {} : { rewards: state.contracts.rewards }),
    ...(state.contracts.timelock === undefined ? {} : { timelock: state.contracts.timelock }),
    deployBlock: BigInt(state.deployBlock ?? 0),
  };
}

/** The simulated CPU and GPU roots a requester pins on this devnet (never on a real network). */
export function devnetRoots(state: Pick<DevnetStateFile, 'simulatedRootPem' | 'simulatedGpuRootPem'>) {
  return {
    roots: { simulated: [certificateDer(state.simulatedRootPem)] },
    gpuRoots: state.simulatedGpuRootPem ? { simulated: [certificateDer(state.simulatedGpuRootPem)] } : {},
  };
}
