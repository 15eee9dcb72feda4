import type { Address, Hex } from 'viem';
import { firnRegistryAbi } from './abi/generated.ts';
import { toChainError } from './ChainRevertedError.ts';
import type { FirnClients } from './clients.ts';

/** A registration or key rotation that opened a verifier vote. */
export type RegistrationEvent =
  | {
      kind: 'registered';
      enclaveId: Hex;
      operator: Address;
      round: number;
      teeType: number;
      measurement: Hex;
      platformIdHash: Hex;
      enclaveAddress: Address;
      kemPublicKey: Hex;
      endpoint: string;
      evidenceDigest: Hex;
      stake: bigint;
      fee: bigint;
      /** Verifier-set snapshot the round's quorum is measured against. */
      snapshotId: bigint;
      blockNumber: bigint;
      transactionHash: Hex;
      logIndex: number;
    }
  | {
      kind: 'keyRotation';
      enclaveId: Hex;
      round: number;
      newEnclaveAddress: Address;
      newKemPublicKey: Hex;
      newEvidenceDigest: Hex;
      snapshotId: bigint;
      blockNumber: bigint;
      transactionHash: Hex;
      logIndex: number;
    };

export interface WatchRegistrationsOptions {
  /** First block to scan (default: the deployment block). */
  fromBlock?: bigint;
  /** Poll period in ms (default 1000). */
  pollIntervalMs?: number;
  /** Largest block range per getLogs call (default 5000), for RPCs that cap ranges. */
  maxBlockRange?: bigint;
  /** Called once per event, in chain order; the next event waits for the returned promise. */
  onEvent: (event: RegistrationEvent) => void | Promise<void>;
  /** Called when a poll fails (the watcher keeps polling, backing off). */
  onError?: (error: Error) => void;
  /** Called with the next block to scan whenever it moves (persist it to resume after a restart). */
  onProgress?: (nextBlock: bigint) => void;
  /** Longest wait between polls while they fail, ms (the wait doubles from pollIntervalMs). Default 30 000. */
  maxBackoffMs?: number;
}

export interface RegistrationWatcher {
  stop(): void;
  /** The next block the watcher will scan. */
  readonly nextBlock: bigint;
}

/** Fetch NodeRegistered and KeyRotationRequested events in [fromBlock, toBlock], in chain order. */
export async function getRegistrationEvents(
  clients: FirnClients,
  fromBlock: bigint,
  toBlock: bigint,
): Promise<RegistrationEvent[]> {
  try {
    const [regs, rots] = await Promise.all([
      clients.public.getContractEvents({
        address: clients.addresses.registry,
        abi: firnRegistryAbi,
        eventName: 'NodeRegistered',
        fromBlock,
        toBlock,
        strict: true,
      }),
      clients.public.getContractEvents({
        address: clients.addresses.registry,
        abi: firnRegistryAbi,
        eventName: 'KeyRotationRequested',
        fromBlock,
        toBlock,
        strict: true,
      }),
    ]);
    const out: RegistrationEvent[] = [];
    for (const l of regs)
      out.push({
        kind: 'registered',
        ...l.args,
        blockNumber: l.blockNumber,
        transactionHash: l.transactionHash,
        logIndex: l.logIndex,
      });
    for (const l of rots)
      out.push({
        kind: 'keyRotation',
        ...l.args,
        blockNumber: l.blockNumber,
        transactionHash: l.transactionHash,
        logIndex: l.logIndex,
      });
    out.sort((a, b) =>
      a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1,
    );
    return out;
  } catch (e) {
    throw toChainError(e, 'getRegistrationEvents');
  }
}

/**
 * Poll the registry for new registrations and key rotations (what verifiers must re-check). Uses
 * getLogs rather than filters so it works against any RPC and resumes from a known block
 * (`fromBlock`, e.g. a cursor saved through `onProgress`). Failed polls back off.
 */
export function watchRegistrations(
  clients: FirnClients,
  opts: WatchRegistrationsOptions,
): RegistrationWatcher {
  let next = opts.fromBlock ?? clients.addresses.deployBlock;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const interval = opts.pollIntervalMs ?? 1000;
  const range = opts.maxBlockRange ?? 5000n;
  let failures = 0;

  const poll = async (): Promise<void> => {
    try {
      const latest = await clients.public.getBlockNumber({ cacheTime: 0 });
      while (!stopped && next <= latest) {
        const to = next + range - 1n < latest ? next + range - 1n : latest;
        const events = await getRegistrationEvents(clients, next, to);
        for (const ev of events) {
          if (stopped) return;
          await opts.onEvent(ev);
        }
        next = to + 1n;
        opts.onProgress?.(next);
      }
      failures = 0;
    } catch (e) {
      failures++;
      opts.onError?.(e instanceof Error ? e : new Error(String(e)));
    } finally {
      // An unreachable RPC is polled less and less often (doubling, capped), then at the normal
      // pace again as soon as a poll succeeds; the cursor never moves past an unhandled event.
      const wait =
        failures === 0
          ? interval
          : Math.min(opts.maxBackoffMs ?? 30_000, interval * 2 ** Math.min(failures, 20));
      if (!stopped) timer = setTimeout(poll, wait);
    }
  };
  timer = setTimeout(poll, 0);
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
    get nextBlock() {
      return next;
    },
  };
}
