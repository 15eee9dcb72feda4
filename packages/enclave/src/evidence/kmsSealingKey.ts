import {
  bytesEqual,
  bytesToHex,
  computeReportData,
  type EvidenceBundle,
  FirnError,
  type Hex,
  hexBytes,
  readBodyCapped,
  TAGS,
} from '@firn/core';
import { generateKemKeyPair, hpkeOpen, verifyTagged } from '@firn/crypto';
import {
  KMS_KEY_BYTES,
  KMS_REQUEST_ADDRESS,
  type KmsKeyRequest,
  kmsReleaseHpkeParams,
  kmsResponseFields,
  MAX_KMS_RESPONSE_BYTES,
  parseKmsJson,
  parseKmsKeyResponse,
  parseKmsNonceResponse,
} from './kmsProtocol.ts';
import type { EvidenceProvider } from './types.ts';

export interface KmsSealingKeyOptions {
  /** Base URL of the key broker, e.g. http://127.0.0.1:7400. */
  url: string;
  /**
   * The broker's identity address (20 bytes hex). The answer must be signed by it: an impostor
   * broker run by the host could otherwise hand the TD a key the host knows. The pin is part of
   * what is measured: environmentFromEnv takes it from the image manifest (decision 1710).
   */
  brokerAddress: Hex | string;
  /** The TEE that quotes for this TD. */
  provider: EvidenceProvider;
  /**
   * This TEE's own identity as it computes it (measurement digest, platform id): the key must have
   * been derived for exactly this, or it is refused (a broker deriving for another identity would
   * hand out a key someone else can also obtain).
   */
  expected?: () => { measurement: Uint8Array; platformId: Uint8Array };
  /** Per-request timeout, ms (default 10 s). */
  timeoutMs?: number;
  /** Injected for tests; defaults to the global fetch. */
  fetch?: typeof fetch;
}

async function postJson(o: KmsSealingKeyOptions, path: string, body: unknown): Promise<unknown> {
  const f = o.fetch ?? fetch;
  let res: Response;
  try {
    res = await f(new URL(path, o.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(o.timeoutMs ?? 10_000),
    });
  } catch (e) {
    throw new FirnError('E_UNAVAILABLE', `key broker at ${o.url} is not reachable`, { cause: e });
  }
  const bytes = await readBodyCapped(res, MAX_KMS_RESPONSE_BYTES, 'key broker response');
  const json = parseKmsJson(bytes, MAX_KMS_RESPONSE_BYTES, 'key broker response');
  if (!res.ok) {
    // The broker names the reason with a stable code; pass it on so the operator can act.
    const err = (json as { error?: { code?: unknown; message?: unknown } }).error;
    const code = typeof err?.code === 'string' && err.code.startsWith('E_') ? err.code : 'E_UNAVAILABLE';
    const msg = typeof err?.message === 'string' ? err.message.slice(0, 300) : `HTTP ${res.status}`;
    throw new FirnError(code as FirnError['code'], `key broker refused: ${msg}`);
  }
  return json;
}

/**
 * Ask the key broker for this TD's sealing key: fetch a fresh nonce, quote report data binding
 * that nonce and a fresh ephemeral HPKE key (enclave address slot = 20 zero bytes), send the
 * evidence, check the answer is signed by the pinned broker for exactly this nonce and key, and
 * open the HPKE-sealed 32-byte key. Proves the key came from the pinned broker for this request;
 * what the broker checked (measurement allow-list, TCB) is the broker's policy, not checked here.
 * Errors: E_UNAVAILABLE (broker unreachable), the broker's refusal code (E_POLICY_REJECTED,
 * E_EVIDENCE_*), E_CRYPTO (signature not from the pinned broker), E_SEAL (key derived for another
 * identity than `expected`), E_DECRYPT, E_TOO_LARGE.
 */
export async function requestKmsSealingKey(o: KmsSealingKeyOptions): Promise<Uint8Array> {
  const broker = bytesToHex(hexBytes(o.brokerAddress, 'broker address', 20));
  const { nonce } = parseKmsNonceResponse(await postJson(o, '/v1/kms/nonce', {}));
  const eph = await generateKemKeyPair();
  // No operator: the sealing key follows the measurement and platform, whoever operates the
  // machine (decision 1830 binds the operator only into registration evidence).
  const reportData = computeReportData({
    enclaveAddress: KMS_REQUEST_ADDRESS,
    kemPublicKey: eph.publicKey,
    nonce: hexBytes(nonce, 'nonce'),
  });
  const { quote, collateral } = await o.provider.quote(reportData);
  const evidence: EvidenceBundle = {
    version: 1,
    teeType: o.provider.teeType,
    quote: bytesToHex(quote),
    nonce,
    enclaveAddress: bytesToHex(KMS_REQUEST_ADDRESS),
    kemPublicKey: bytesToHex(eph.publicKey),
  };
  if (collateral !== undefined) evidence.collateral = collateral;
  const request: KmsKeyRequest = { v: 1, evidence };
  const r = parseKmsKeyResponse(await postJson(o, '/v1/kms/key', request));
  if (r.nonce !== nonce || !bytesEqual(hexBytes(r.recipient, 'recipient'), eph.publicKey))
    throw new FirnError('E_EVIDENCE_NONCE', 'key broker answered another request');
  if (!verifyTagged(broker, TAGS.kmsResponse, kmsResponseFields(r), hexBytes(r.signature, 'signature')))
    throw new FirnError('E_CRYPTO', 'key broker answer is not signed by the pinned broker address');
  const me = o.expected?.();
  if (
    me &&
    (!bytesEqual(hexBytes(r.measurement, 'measurement'), me.measurement) ||
      !bytesEqual(hexBytes(r.platformId, 'platformId'), me.platformId))
  )
    throw new FirnError('E_SEAL', 'key broker released a key for another measurement or platform');
  const key = await hpkeOpen(
    eph.privateKey,
    hexBytes(r.enc, 'enc'),
    hexBytes(r.ciphertext, 'ciphertext'),
    kmsReleaseHpkeParams(r),
  );
  eph.privateKey.fill(0);
  if (key.length !== KMS_KEY_BYTES) throw new FirnError('E_SEAL', 'released key is not 32 bytes');
  return key;
}

/**
 * The same TEE with its sealing key from the key broker instead of the hardware (TDX has none).
 * Quotes are unchanged; sealingKey() asks the broker each time (the key is never cached on disk).
 */
export function withKmsSealingKey(
  provider: EvidenceProvider,
  o: Omit<KmsSealingKeyOptions, 'provider'>,
): EvidenceProvider {
  return {
    teeType: provider.teeType,
    quote: (rd) => provider.quote(rd),
    sealingKey: () => requestKmsSealingKey({ ...o, provider }),
  };
}
