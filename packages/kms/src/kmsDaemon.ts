import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AppraiseOptions, AttestationPolicy, SimulatedPlatform } from '@firn/attestation';
import {
  assertNonce,
  bytesToHex,
  computeReportData,
  type EvidenceBundle,
  FirnError,
  type Hex,
  hexBytes,
  measurementDigest,
  type TeeTypeName,
} from '@firn/core';
import { createSimulatedProvider, MAX_KMS_REQUEST_BYTES } from '@firn/enclave';
import { type Logger, RequestRateLimiter, Router, readJson, remoteClient } from '@firn/node';
import { KeyBroker } from './keyBroker.ts';
import { loadOrCreateMasterSecret } from './masterSecret.ts';

export interface KmsDaemonOptions {
  /** Where the sealed master secret (sealed-master.json) and kms.json live. */
  dataDir: string;
  host?: string;
  /** Listen port (0 = any free port). */
  port?: number;
  /** The broker's own simulated TEE: its sealing key seals the master secret. */
  platform: SimulatedPlatform;
  /** Appraisal of key requests: the policy must carry a measurement allow-list. */
  policy: AttestationPolicy;
  roots?: AppraiseOptions['roots'];
  collateral?: unknown;
  isMeasurementAllowed?: (teeType: TeeTypeName, measurement: Hex) => Promise<boolean>;
  logger: Logger;
  /** Clock for appraisal, unix seconds (tests). */
  now?: () => number;
  /** Per-client request rates (decision 1716); each route has its own budget. */
  limits?: Partial<KmsRateLimits>;
}

/**
 * Requests per second one client (an IPv4 address, an IPv6 /64: `clientKey`) may make to each
 * route of the broker; more are answered 429 E_RATE_LIMITED with Retry-After. Separate budgets,
 * so a client that floods one route (nonces) can still make its key request.
 */
export interface KmsRateLimits {
  /** POST /v1/kms/nonce per client per second. Default 20. */
  noncesPerSecondPerIp: number;
  /** POST /v1/kms/key per client per second (each an evidence appraisal). Default 10. */
  keyRequestsPerSecondPerIp: number;
  /** POST /v1/kms/attestation per client per second (each a quote). Default 5. */
  attestationsPerSecondPerIp: number;
}

export const DEFAULT_KMS_RATE_LIMITS: KmsRateLimits = Object.freeze({
  noncesPerSecondPerIp: 20,
  keyRequestsPerSecondPerIp: 10,
  attestationsPerSecondPerIp: 5,
});

/** What the daemon writes to dataDir/kms.json once listening: how TDs find and pin the broker. */
export interface KmsInfo {
  url: string;
  /** The broker identity address enclaves pin in their measured image (--key-broker; decision 1710). */
  address: Hex;
  /** The broker's own measurement digest (simulated: over its source files). */
  measurement: Hex;
  measurementAllowList: string[];
}

/**
 * The broker program's own measured code, for the simulated TEE: SHA-256 over the sorted names
 * and bytes of this package's source files (tests excluded). Changing the broker's code changes
 * its measurement, and a master secret sealed by another build no longer opens.
 */
export function brokerCodeSha256(): Uint8Array {
  const dir = dirname(fileURLToPath(import.meta.url));
  const h = createHash('sha256');
  for (const f of readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .sort()) {
    h.update(`${f}\0`);
    h.update(readFileSync(join(dir, f)));
  }
  return new Uint8Array(h.digest());
}

/**
 * The key broker daemon (`firn kms start`): opens (or creates) its master secret sealed by its
 * own simulated TEE, then serves POST /v1/kms/nonce, POST /v1/kms/key, POST /v1/kms/attestation
 * (its own evidence binding its identity address and the caller's nonce), GET /v1/kms, GET /healthz.
 * Each POST route is rate-limited per client (`limits`, 429 E_RATE_LIMITED over them).
 * It logs refusals by code and released identities by measurement, never a key.
 */
export class KmsDaemon {
  readonly opts: KmsDaemonOptions;
  broker: KeyBroker | undefined;
  info: KmsInfo | undefined;
  private server: Server | undefined;

  constructor(opts: KmsDaemonOptions) {
    this.opts = opts;
  }

  async start(): Promise<KmsInfo> {
    const o = this.opts;
    mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    const code = brokerCodeSha256();
    const measurement = measurementDigest('simulated', [code]);
    const provider = createSimulatedProvider(o.platform, code);
    const sealingKey = await provider.sealingKey();
    const { secret, created } = loadOrCreateMasterSecret(
      join(o.dataDir, 'sealed-master.json'),
      sealingKey,
      measurement,
    );
    sealingKey.fill(0);
    this.broker = new KeyBroker({
      masterSecret: secret,
      policy: o.policy,
      ...(o.roots === undefined ? {} : { roots: o.roots }),
      ...(o.collateral === undefined ? {} : { collateral: o.collateral }),
      ...(o.isMeasurementAllowed === undefined ? {} : { isMeasurementAllowed: o.isMeasurementAllowed }),
      ...(o.now === undefined ? {} : { now: o.now }),
    });
    secret.fill(0);
    const broker = this.broker;
    const log = o.logger;
    log.info(created ? 'key broker master secret created and sealed' : 'key broker master secret unsealed', {
      address: broker.address,
      measurement: bytesToHex(measurement),
    });
    const limits = { ...DEFAULT_KMS_RATE_LIMITS, ...o.limits };
    const nonceRate = new RequestRateLimiter(limits.noncesPerSecondPerIp);
    const keyRate = new RequestRateLimiter(limits.keyRequestsPerSecondPerIp);
    const attestationRate = new RequestRateLimiter(limits.attestationsPerSecondPerIp);
    const router = new Router();
    router.add('GET', '/healthz', () => ({ ok: true }));
    router.add('GET', '/v1/kms', () => this.info);
    // Nonces are stateless (decision 1716): a flood cannot take a TD's nonce away; the rate
    // limit only bounds what a client costs the broker.
    router.add('POST', '/v1/kms/nonce', async ({ req }) => {
      await nonceRate.take(remoteClient(req));
      return broker.issueNonce();
    });
    // The broker's own evidence: its (simulated) TEE quotes its identity address for the caller's
    // nonce, so whoever pins the address can first check which broker code holds it. It binds no
    // operator (decision 1830): the broker is pinned by address, never registered.
    router.add('POST', '/v1/kms/attestation', async ({ req }) => {
      await attestationRate.take(remoteClient(req));
      const body = (await readJson(req, 4096)) as { nonce?: unknown } | null;
      const nonce = assertNonce(hexBytes(body?.nonce, 'nonce', undefined, 64));
      const kemPublicKey = new Uint8Array(32);
      const enclaveAddress = hexBytes(broker.address, 'address', 20);
      const { quote } = await provider.quote(computeReportData({ enclaveAddress, kemPublicKey, nonce }));
      const bundle: EvidenceBundle = {
        version: 1,
        teeType: provider.teeType,
        quote: bytesToHex(quote),
        nonce: bytesToHex(nonce),
        enclaveAddress: broker.address,
        kemPublicKey: bytesToHex(kemPublicKey),
      };
      return bundle;
    });
    router.add('POST', '/v1/kms/key', async ({ req }) => {
      await keyRate.take(remoteClient(req));
      const body = await readJson(req, MAX_KMS_REQUEST_BYTES);
      try {
        const { response, facts } = await broker.release(body);
        log.info('sealing key released', {
          teeType: facts.teeType,
          measurement: bytesToHex(facts.measurement),
          platformId: bytesToHex(facts.platformId),
        });
        return response;
      } catch (e) {
        log.warn('sealing key refused', { code: (e as { code?: string }).code ?? 'E_INTERNAL' });
        throw e;
      }
    });
    this.server = createServer((req, res) => {
      void router.handle(req, res, log);
    });
    this.server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      // A port already taken (or not ours to bind) is the operator's to fix, not a crash.
      this.server!.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new FirnError(
            e.code === 'EADDRINUSE' ? 'E_CONFLICT' : 'E_INVALID_INPUT',
            `the key broker cannot listen on ${o.host ?? '127.0.0.1'}:${o.port ?? 0} (--host/--port): ${e.code ?? e.message}`,
          ),
        ),
      );
      this.server!.listen(o.port ?? 0, o.host ?? '127.0.0.1', resolve);
    });
    const addr = this.server.address() as AddressInfo;
    this.info = {
      url: `http://${o.host ?? '127.0.0.1'}:${addr.port}`,
      address: broker.address,
      measurement: bytesToHex(measurement),
      measurementAllowList: [...(o.policy.measurementAllowList ?? [])],
    };
    const tmp = join(o.dataDir, 'kms.json.tmp');
    writeFileSync(tmp, JSON.stringify(this.info, null, 2));
    renameSync(tmp, join(o.dataDir, 'kms.json'));
    log.info('key broker listening', { ...this.info });
    return this.info;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections?.();
  }
}
