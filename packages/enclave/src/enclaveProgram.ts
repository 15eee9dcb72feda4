import {
  bytesToHex,
  computeEnclaveId,
  computeReportData,
  deriveGpuNonce,
  type EvidenceBundle,
  FirnError,
  gpuEvidenceDigest,
  hexBytes,
  measurementDigest,
  type GpuEvidenceEntry,
  assertNonce,
  bytesEqual,
} from '@firn/core';
import type { EvidenceProvider, GpuEvidenceCollector } from './evidence/types.ts';
import { type EnclaveKeys, generateEnclaveKeys, sealKeys, unsealKeys } from './keys.ts';
import { createTrustedTime, type TrustedTime } from './trustedTime.ts';
import { livenessHandlers } from './liveness.ts';
import { PROTOCOL_VERSION } from './protocol.ts';

export interface EnclaveEnvironment {
  provider: EvidenceProvider;
  /** Raw measurement register(s) of this program, as the TEE reports them. */
  measurementRegisters: Uint8Array[];
  platformId: Uint8Array;
  gpu?: GpuEvidenceCollector;
  /** Emit an event to the host (progress of jobs); data must be public or ciphertext. */
  emit?: (event: string, data: unknown) => void;
}

export type Handler = (params: Record<string, unknown>, ctx: EnclaveContext) => Promise<unknown>;

export interface EnclaveContext {
  env: EnclaveEnvironment;
  /** The enclave's monotonic time floor (grants and sessions check expiry against it). */
  time: TrustedTime;
  /** Throws until `init` ran. */
  keys(): EnclaveKeys;
  enclaveId(): Uint8Array;
  measurement: Uint8Array;
}

/**
 * The trusted program's request handlers. Keys are generated or unsealed inside; only the sealed
 * blob, public keys and quotes leave.
 */
export function createEnclaveProgram(env: EnclaveEnvironment, extraHandlers: Record<string, Handler> = {}) {
  let keys: EnclaveKeys | undefined;
  // The operator account this process serves (decision 1830): named by the host in its first
  // `init`, then fixed for the life of the process; every quote binds it. No other method sets it.
  let operator: Uint8Array | undefined;
  let operatorFixed = false;
  const measurement = measurementDigest(env.provider.teeType, env.measurementRegisters);
  const time = createTrustedTime({
    measurement,
    onAdvance: (sealedState) => env.emit?.('enclaveState', { sealedState }),
  });
  const ctx: EnclaveContext = {
    env,
    time,
    measurement,
    keys() {
      if (!keys) throw new FirnError('E_ENCLAVE_PROTOCOL', 'enclave not initialised');
      return keys;
    },
    enclaveId() {
      return computeEnclaveId(env.provider.teeType, env.platformId, measurement);
    },
  };

  const identity = () => ({
    teeType: env.provider.teeType,
    measurement: bytesToHex(measurement),
    platformId: bytesToHex(env.platformId),
    enclaveId: bytesToHex(ctx.enclaveId()),
    enclaveAddress: bytesToHex(ctx.keys().enclaveAddress),
    kemPublicKey: bytesToHex(ctx.keys().kemPublicKey),
    ...(operator === undefined ? {} : { operator: bytesToHex(operator) }),
  });

  // Evidence is generated one request at a time: Gramine's /dev/attestation (write report data,
  // then read the quote) and configfs-tsm are per-process state, so two interleaved attestations
  // could return a quote over the other's report data. GPU evidence joins the same queue.
  let evidenceQueue: Promise<unknown> = Promise.resolve();
  const inSeries = <T>(f: () => Promise<T>): Promise<T> => {
    const run = evidenceQueue.then(f, f);
    evidenceQueue = run.catch(() => undefined);
    return run;
  };

  const handlers: Record<string, Handler> = {
    async hello() {
      return {
        protocolVersion: PROTOCOL_VERSION,
        teeType: env.provider.teeType,
        measurement: bytesToHex(measurement),
      };
    },
    /**
     * Open (or create) the keys. `operator` (20-byte hex, or absent/null for none) is the chain
     * account the host operates this enclave for; the first successful init fixes it, and a later
     * init naming another (or none) is refused with E_ENCLAVE_PROTOCOL. E_INVALID_INPUT when it is
     * not 20 bytes of hex.
     */
    async init(params) {
      const named =
        params.operator === undefined || params.operator === null
          ? undefined
          : hexBytes(params.operator, 'operator', 20);
      if (operatorFixed && !sameOperator(named, operator))
        throw new FirnError(
          'E_ENCLAVE_PROTOCOL',
          `the operator is fixed when the enclave starts (${operator === undefined ? 'none' : bytesToHex(operator)}); restart the enclave to serve another`,
        );
      const sealingKey = await env.provider.sealingKey();
      let sealed: unknown = params.sealedKeys;
      if (sealed === undefined || sealed === null) {
        keys = generateEnclaveKeys();
        sealed = sealKeys(keys, sealingKey, measurement);
      } else {
        keys = unsealKeys(sealed, sealingKey, measurement);
      }
      // The time floor survives restarts in a blob only this enclave opens (a stale one is a known limit).
      time.restore(params.sealedState, sealingKey);
      operator = named;
      operatorFixed = true;
      return { ...identity(), sealedKeys: sealed, sealedState: time.seal() };
    },
    async identity() {
      return identity();
    },
    async attest(params) {
      // Only the nonce comes from the request: the operator is the one fixed at init, whatever
      // else the params carry.
      const nonce = assertNonce(hexBytes(params.nonce, 'nonce', undefined, 64));
      const k = ctx.keys();
      const bound = operator;
      const { gpu, quote, collateral } = await inSeries(async () => {
        let gpu: GpuEvidenceEntry[] | undefined;
        if (env.gpu) gpu = await env.gpu.collect(deriveGpuNonce(nonce));
        const reportData = computeReportData({
          enclaveAddress: k.enclaveAddress,
          kemPublicKey: k.kemPublicKey,
          nonce,
          ...(gpu === undefined ? {} : { gpuEvidenceDigest: gpuEvidenceDigest(gpu) }),
          ...(bound === undefined ? {} : { operator: bound }),
        });
        return { gpu, ...(await env.provider.quote(reportData)) };
      });
      const bundle: EvidenceBundle = {
        version: 1,
        teeType: env.provider.teeType,
        quote: bytesToHex(quote),
        nonce: bytesToHex(nonce),
        enclaveAddress: bytesToHex(k.enclaveAddress),
        kemPublicKey: bytesToHex(k.kemPublicKey),
      };
      if (bound !== undefined) bundle.operator = bytesToHex(bound);
      if (collateral !== undefined) bundle.collateral = collateral;
      if (gpu !== undefined) bundle.gpu = gpu;
      return bundle;
    },
    ...livenessHandlers,
    ...extraHandlers,
  };

  return {
    ctx,
    async handle(method: string, params: Record<string, unknown>): Promise<unknown> {
      const h = Object.hasOwn(handlers, method) ? handlers[method] : undefined;
      if (!h) throw new FirnError('E_ENCLAVE_PROTOCOL', `unknown method ${method}`);
      return h(params, ctx);
    },
  };
}

/** Both absent, or the same 20 bytes. */
function sameOperator(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a === undefined || b === undefined ? a === b : bytesEqual(a, b);
}
