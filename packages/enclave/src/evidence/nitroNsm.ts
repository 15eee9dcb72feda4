import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { nitroIdentityOf, parseNitroDocument } from '@firn/attestation';
import { FirnError, MAX_QUOTE_BYTES } from '@firn/core';
import { decode, encode } from 'cborg';
import { ENCLAVE_CHILD_ENV } from '../guestLaunch.ts';
import type { EvidenceProvider } from './types.ts';

/**
 * One round trip to the Nitro Secure Module: a CBOR-encoded NSM API request in, the CBOR-encoded
 * response out (aws-nitro-enclaves-nsm-api src/api/mod.rs: serde's externally tagged Request and
 * Response enums). The kernel reaches the NSM through ioctl(NSM_IOCTL_REQUEST) on /dev/nsm, which
 * Node cannot issue without native code, so a transport is either a helper process that does the
 * ioctl (NsmHelperTransport) or anything a test or embedder supplies.
 */
export interface NsmTransport {
  request(cbor: Uint8Array): Promise<Uint8Array>;
}

/** Largest NSM response read, bytes (the NSM's own response buffer is 16 KiB; documents ~4.5 KiB). */
export const MAX_NSM_RESPONSE_BYTES = 32 * 1024;

export interface NsmHelperOptions {
  /**
   * argv of the helper (no shell): it reads one CBOR request on stdin, issues it on the device with
   * ioctl(NSM_IOCTL_REQUEST) and writes the CBOR response on stdout. The literal "{device}" is
   * replaced by the device path.
   */
  command: readonly string[];
  device: string;
  timeoutMs?: number;
}

/** Runs the NSM helper once per request: time-limited, output-capped, no shell. */
export class NsmHelperTransport implements NsmTransport {
  readonly #o: NsmHelperOptions;
  constructor(o: NsmHelperOptions) {
    if (!Array.isArray(o.command) || o.command.length === 0 || !o.command.every((a) => typeof a === 'string'))
      throw new FirnError('E_INVALID_INPUT', 'NSM helper command must be a non-empty argv array');
    this.#o = o;
  }

  request(cbor: Uint8Array): Promise<Uint8Array> {
    const argv = this.#o.command.map((a) => (a === '{device}' ? this.#o.device : a));
    return new Promise<Uint8Array>((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), {
        shell: false,
        stdio: ['pipe', 'pipe', 'ignore'],
        // A fixed environment, never the enclave's own (decision 1730).
        env: { ...ENCLAVE_CHILD_ENV },
        timeout: this.#o.timeoutMs ?? 10_000,
        killSignal: 'SIGKILL',
      });
      const chunks: Buffer[] = [];
      let size = 0;
      let over = false;
      child.stdout.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_NSM_RESPONSE_BYTES) {
          over = true;
          child.kill('SIGKILL');
        } else chunks.push(c);
      });
      child.on('error', (e) =>
        reject(new FirnError('E_ENCLAVE_UNAVAILABLE', 'NSM helper could not be started', { cause: e })),
      );
      child.on('close', (code, signal) => {
        if (over)
          return reject(
            new FirnError('E_ENCLAVE_PROTOCOL', `NSM response is over ${MAX_NSM_RESPONSE_BYTES} bytes`),
          );
        if (code !== 0)
          return reject(
            new FirnError('E_ENCLAVE_UNAVAILABLE', `NSM helper failed (${signal ?? `exit ${code}`})`),
          );
        resolve(new Uint8Array(Buffer.concat(chunks)));
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(Buffer.from(cbor));
    });
  }
}

export interface NitroNsmOptions {
  /** Filesystem root; '/' in an enclave, a temp dir in tests. The device is `${root}/dev/nsm`. */
  root?: string;
  /** argv of the NSM helper (see NsmHelperOptions.command), when no transport is given. */
  helper?: readonly string[];
  /** Talk to the NSM through this instead of the helper. */
  transport?: NsmTransport;
  /**
   * Where the sealing key comes from. A Nitro enclave has no hardware sealing key: supply one
   * released by a key broker (or AWS KMS) after attestation.
   */
  sealingKey?: () => Promise<Uint8Array>;
}

/** The NSM API Attestation request (Request::Attestation) with the report data as user_data. */
export function nsmAttestationRequest(userData: Uint8Array): Uint8Array {
  return encode(
    new Map([
      [
        'Attestation',
        new Map<string, Uint8Array | null>([
          ['user_data', userData],
          ['nonce', null],
          ['public_key', null],
        ]),
      ],
    ]),
  );
}

/**
 * The document from an NSM API response (Response::Attestation { document }); Response::Error
 * (an ErrorCode name such as "InvalidArgument") and anything else are typed errors. Size-capped.
 */
export function nsmAttestationDocument(response: Uint8Array): Uint8Array {
  if (response.length === 0 || response.length > MAX_NSM_RESPONSE_BYTES)
    throw new FirnError('E_ENCLAVE_PROTOCOL', `NSM response of ${response.length} bytes`);
  let v: unknown;
  try {
    v = decode(response, { useMaps: true, rejectDuplicateMapKeys: true });
  } catch (e) {
    throw new FirnError('E_ENCLAVE_PROTOCOL', 'NSM response is not CBOR', { cause: e });
  }
  if (!(v instanceof Map) || v.size !== 1)
    throw new FirnError('E_ENCLAVE_PROTOCOL', 'NSM response is not one variant');
  const err = v.get('Error');
  if (err !== undefined)
    throw new FirnError(
      'E_ENCLAVE_UNAVAILABLE',
      `NSM refused the attestation request: ${typeof err === 'string' ? err.slice(0, 64) : 'unknown error'}`,
    );
  const att = v.get('Attestation');
  const doc = att instanceof Map ? att.get('document') : undefined;
  if (!(doc instanceof Uint8Array) || doc.length === 0 || doc.length > MAX_QUOTE_BYTES)
    throw new FirnError('E_ENCLAVE_PROTOCOL', 'NSM response carries no attestation document');
  return doc;
}

/**
 * Evidence from an AWS Nitro enclave: the 64 bytes of report data go to the NSM as user_data
 * (decision 1000) and the attestation document it signs is the quote. The document is checked for
 * shape (parseNitroDocument) and that its user_data is exactly the report data requested (else
 * E_CONFLICT); its signature and chain are the verifiers' to check.
 */
export class NitroNsmEvidenceProvider implements EvidenceProvider {
  readonly teeType = 'nitro' as const;
  readonly #o: NitroNsmOptions;
  readonly #device: string;

  constructor(o: NitroNsmOptions = {}) {
    if (o.transport === undefined && o.helper === undefined)
      throw new FirnError('E_INVALID_INPUT', 'a Nitro provider needs an NSM helper command or a transport');
    this.#o = o;
    this.#device = join(o.root ?? '/', 'dev', 'nsm');
  }

  async quote(reportData: Uint8Array): Promise<{ quote: Uint8Array }> {
    if (!(reportData instanceof Uint8Array) || reportData.length !== 64)
      throw new FirnError('E_INVALID_INPUT', 'report data must be 64 bytes');
    try {
      await stat(this.#device);
    } catch (e) {
      throw new FirnError(
        'E_ENCLAVE_UNAVAILABLE',
        `${this.#device} is not available (not in a Nitro enclave?)`,
        {
          cause: e,
        },
      );
    }
    const transport =
      this.#o.transport ?? new NsmHelperTransport({ command: this.#o.helper ?? [], device: this.#device });
    const quote = nsmAttestationDocument(await transport.request(nsmAttestationRequest(reportData)));
    let doc: ReturnType<typeof parseNitroDocument>;
    try {
      doc = parseNitroDocument(quote);
    } catch (e) {
      throw new FirnError(
        'E_ENCLAVE_PROTOCOL',
        'NSM returned something that is not an attestation document',
        {
          cause: e,
        },
      );
    }
    // The document must carry exactly the report data we asked for: a confused or racing helper
    // (another request's answer, a replayed document) is caught here, not only at the verifier.
    if (doc.userData === null || !Buffer.from(doc.userData).equals(Buffer.from(reportData)))
      throw new FirnError(
        'E_CONFLICT',
        'the NSM attestation document binds other user_data than the report data requested',
      );
    return { quote };
  }

  /**
   * The registers and platform id this enclave's own document names (for the enclave environment:
   * the hardware measured this program, the enclave learns who it is from its NSM).
   */
  async selfIdentity(): Promise<{ measurementRegisters: Uint8Array[]; platformId: Uint8Array }> {
    const { quote } = await this.quote(new Uint8Array(64));
    const id = nitroIdentityOf(parseNitroDocument(quote));
    return { measurementRegisters: id.registers, platformId: id.platformId };
  }

  /** Only what was configured: Nitro itself offers no sealing key. */
  async sealingKey(): Promise<Uint8Array> {
    if (!this.#o.sealingKey)
      throw new FirnError(
        'E_UNSUPPORTED',
        'a Nitro enclave has no hardware sealing key; configure a key released by a key broker',
      );
    const k = await this.#o.sealingKey();
    if (!(k instanceof Uint8Array) || k.length !== 32)
      throw new FirnError('E_SEAL', 'configured sealing key must be 32 bytes');
    return k;
  }
}

/**
 * The enclave environment pieces for a Nitro enclave (what environmentFromEnv assembles per TEE):
 * the provider, and the registers and platform id its own NSM document names, which the enclave
 * and every verifier reduce to the same measurement digest and Enclave ID.
 */
export async function nitroEnvironment(o: NitroNsmOptions): Promise<{
  provider: NitroNsmEvidenceProvider;
  measurementRegisters: Uint8Array[];
  platformId: Uint8Array;
}> {
  const provider = new NitroNsmEvidenceProvider(o);
  return { provider, ...(await provider.selfIdentity()) };
}
