import { hkdfSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FirnError, MAX_QUOTE_BYTES, TAGS, utf8 } from '@firn/core';
import type { EvidenceProvider } from './types.ts';

export interface GramineProviderOptions {
  /** Filesystem root; '/' inside a Gramine enclave, a temp dir in tests. */
  root?: string;
}

/**
 * Evidence from Gramine on SGX: report data written to /dev/attestation/user_report_data, the DCAP
 * quote read from /dev/attestation/quote, and a sealing key derived from Gramine's MRENCLAVE-bound
 * key /dev/attestation/keys/_sgx_mrenclave.
 */
export class GramineEvidenceProvider implements EvidenceProvider {
  readonly teeType = 'sgx' as const;
  readonly #root: string;

  constructor(opts: GramineProviderOptions = {}) {
    this.#root = opts.root ?? '/';
  }

  #path(...p: string[]): string {
    return join(this.#root, 'dev', 'attestation', ...p);
  }

  async quote(reportData: Uint8Array): Promise<{ quote: Uint8Array }> {
    if (!(reportData instanceof Uint8Array) || reportData.length !== 64)
      throw new FirnError('E_INVALID_INPUT', 'report data must be 64 bytes');
    try {
      // Gramine regenerates the quote when user_report_data is written; both files are per-thread-safe
      // only under Gramine's own lock, so callers serialise quote() (the enclave does).
      await writeFile(this.#path('user_report_data'), reportData);
      const quote = new Uint8Array(await readFile(this.#path('quote')));
      if (quote.length === 0 || quote.length > MAX_QUOTE_BYTES)
        throw new FirnError('E_ENCLAVE_UNAVAILABLE', `Gramine returned a quote of ${quote.length} bytes`);
      return { quote };
    } catch (e) {
      if (e instanceof FirnError) throw e;
      throw new FirnError('E_ENCLAVE_UNAVAILABLE', 'Gramine /dev/attestation is not available', { cause: e });
    }
  }

  /** HKDF-SHA256 of Gramine's 16-byte MRENCLAVE sealing key, tagged so it serves only this purpose. */
  async sealingKey(): Promise<Uint8Array> {
    let raw: Buffer;
    try {
      raw = await readFile(this.#path('keys', '_sgx_mrenclave'));
    } catch (e) {
      throw new FirnError('E_SEAL', 'Gramine sealing key is not available', { cause: e });
    }
    if (raw.length !== 16)
      throw new FirnError('E_SEAL', `Gramine sealing key has ${raw.length} bytes, expected 16`);
    return new Uint8Array(hkdfSync('sha256', raw, new Uint8Array(0), utf8(TAGS.gramineSealKey), 32));
  }
}
