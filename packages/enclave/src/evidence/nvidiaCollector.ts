import { spawn } from 'node:child_process';
import { FirnError, type GpuEvidenceEntry, MAX_GPU_ENTRIES } from '@firn/core';
import { ENCLAVE_CHILD_ENV } from '../guestLaunch.ts';
import type { GpuEvidenceCollector } from './types.ts';

export interface NvidiaCollectorOptions {
  /** argv (no shell); the literal "{nonce}" is replaced by the hex nonce, else it is appended. */
  command: readonly string[];
  timeoutMs?: number;
  maxOutputBytes?: number;
  /**
   * The collector's whole environment; default ENCLAVE_CHILD_ENV (a fixed PATH, nothing the host
   * set). Never the enclave's own environment (decision 1730).
   */
  env?: Readonly<Record<string, string>>;
}

const MAX_FIELD = 256 * 1024;

/** Parse the SDK's evidence list JSON with size and shape checks. */
export function parseGpuEvidenceList(text: string): GpuEvidenceEntry[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new FirnError('E_EVIDENCE_MALFORMED', 'GPU collector output is not JSON');
  }
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_GPU_ENTRIES)
    throw new FirnError(
      'E_EVIDENCE_MALFORMED',
      `GPU evidence must be a list of 1..${MAX_GPU_ENTRIES} entries`,
    );
  return v.map((e, i) => {
    if (typeof e !== 'object' || e === null || Array.isArray(e))
      throw new FirnError('E_EVIDENCE_MALFORMED', `GPU evidence entry ${i} is not an object`);
    const o = e as Record<string, unknown>;
    for (const k of ['arch', 'nonce', 'evidence', 'certificate'])
      if (typeof o[k] !== 'string' || (o[k] as string).length > MAX_FIELD)
        throw new FirnError('E_EVIDENCE_MALFORMED', `GPU evidence entry ${i} field ${k} missing or too long`);
    return o as GpuEvidenceEntry;
  });
}

/**
 * Collects GPU evidence by running a configured command (e.g. a wrapper around NVIDIA's
 * attestation SDK) that prints the SDK's JSON list for the given nonce; time-limited,
 * output-capped, without a shell and with a fixed environment (ENCLAVE_CHILD_ENV by default). The output is untrusted: it is verified later, never here.
 */
export class NvidiaCommandCollector implements GpuEvidenceCollector {
  readonly #opts: NvidiaCollectorOptions;

  constructor(opts: NvidiaCollectorOptions) {
    if (
      !Array.isArray(opts.command) ||
      opts.command.length === 0 ||
      !opts.command.every((a) => typeof a === 'string')
    )
      throw new FirnError('E_INVALID_INPUT', 'collector command must be a non-empty argv array');
    this.#opts = opts;
  }

  async collect(gpuNonce: Uint8Array): Promise<GpuEvidenceEntry[]> {
    if (!(gpuNonce instanceof Uint8Array) || gpuNonce.length !== 32)
      throw new FirnError('E_INVALID_INPUT', 'GPU nonce must be 32 bytes');
    const hex = Buffer.from(gpuNonce).toString('hex');
    const argv = this.#opts.command.includes('{nonce}')
      ? this.#opts.command.map((a) => (a === '{nonce}' ? hex : a))
      : [...this.#opts.command, hex];
    const max = this.#opts.maxOutputBytes ?? 4 << 20;
    const text = await new Promise<string>((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), {
        shell: false,
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: this.#opts.timeoutMs ?? 60_000,
        killSignal: 'SIGKILL',
        env: { ...(this.#opts.env ?? ENCLAVE_CHILD_ENV) },
      });
      const chunks: Buffer[] = [];
      let size = 0;
      let over = false;
      child.stdout.on('data', (c: Buffer) => {
        size += c.length;
        if (size > max) {
          over = true;
          child.kill('SIGKILL');
        } else chunks.push(c);
      });
      child.on('error', (e) =>
        reject(new FirnError('E_UNAVAILABLE', 'GPU collector could not start', { cause: e })),
      );
      child.on('close', (code, signal) => {
        if (over) reject(new FirnError('E_TOO_LARGE', `GPU collector output over ${max} bytes`));
        else if (signal) reject(new FirnError('E_TIMEOUT', `GPU collector stopped by ${signal}`));
        else if (code !== 0) reject(new FirnError('E_UNAVAILABLE', `GPU collector exited with ${code}`));
        else resolve(Buffer.concat(chunks).toString('utf8'));
      });
    });
    return parseGpuEvidenceList(text);
  }
}
