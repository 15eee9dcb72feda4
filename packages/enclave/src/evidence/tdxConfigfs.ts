import { randomBytes } from 'node:crypto';
import { mkdir, open, rmdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FirnError, MAX_QUOTE_BYTES } from '@firn/core';
import type { EvidenceProvider } from './types.ts';

export interface TdxConfigfsOptions {
  /** Filesystem root; '/' in a TDX guest, a temp dir in tests. */
  root?: string;
  /**
   * Where the sealing key comes from. A TDX guest has no hardware sealing key: supply one released
   * by a KMS after attestation, or one delivered through RTMR-measured configuration.
   */
  sealingKey?: () => Promise<Uint8Array>;
  /** The filesystem calls used; tests pass a fake kernel that behaves like configfs-tsm. */
  fs?: TsmFs;
}

/** The four calls the configfs-tsm ABI needs. */
export interface TsmFs {
  mkdir(path: string): Promise<unknown>;
  rmdir(path: string): Promise<unknown>;
  /**
   * Read an attribute, at most `maxBytes + 1` bytes of it (so the caller can tell "over the cap"
   * from "exactly the cap" without reading an unbounded blob into memory).
   */
  readFile(path: string, maxBytes: number): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array): Promise<unknown>;
}

/** Small text attributes (provider, generation, privlevel_floor): more is refused. */
export const MAX_TSM_TEXT_BYTES = 256;

/**
 * Read at most `maxBytes + 1` bytes of a file, whatever its size claims (configfs attributes and
 * device nodes report no useful size). Errors: the filesystem's.
 */
export async function readAtMost(path: string, maxBytes: number): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(maxBytes + 1);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, null);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return new Uint8Array(buf.subarray(0, got));
  } finally {
    await fh.close();
  }
}

/** The configfs-tsm calls through node:fs, every read capped (readAtMost). */
export const nodeTsmFs: TsmFs = {
  mkdir: (p) => mkdir(p),
  rmdir: (p) => rmdir(p),
  readFile: (p, maxBytes) => readAtMost(p, maxBytes),
  writeFile,
};

/** Read a TSM attribute capped at `cap`; over it is E_TOO_LARGE naming the attribute. */
export async function readTsmAttribute(fs: TsmFs, path: string, cap: number): Promise<Uint8Array> {
  const b = await fs.readFile(path, cap);
  if (b.length > cap)
    throw new FirnError('E_TOO_LARGE', `configfs-tsm ${basename(path)} is over ${cap} bytes`);
  return b;
}

const TSM_REPORT = ['sys', 'kernel', 'config', 'tsm', 'report'];

/**
 * Evidence from a TDX guest through the kernel's configfs-tsm ABI
 * (Documentation/ABI/testing/configfs-tsm): one report entry per quote, 64 bytes into inblob, the
 * quote from outblob, checked against `provider` and a stable `generation` around the read.
 */
export class TdxConfigfsEvidenceProvider implements EvidenceProvider {
  readonly teeType = 'tdx' as const;
  readonly #opts: TdxConfigfsOptions;
  readonly #fs: TsmFs;

  constructor(opts: TdxConfigfsOptions = {}) {
    this.#opts = opts;
    this.#fs = opts.fs ?? nodeTsmFs;
  }

  async #text(path: string): Promise<string> {
    return Buffer.from(await readTsmAttribute(this.#fs, path, MAX_TSM_TEXT_BYTES))
      .toString('utf8')
      .trim();
  }

  async quote(reportData: Uint8Array): Promise<{ quote: Uint8Array }> {
    if (!(reportData instanceof Uint8Array) || reportData.length !== 64)
      throw new FirnError('E_INVALID_INPUT', 'report data must be 64 bytes');
    const dir = join(this.#opts.root ?? '/', ...TSM_REPORT, `firn-${randomBytes(8).toString('hex')}`);
    try {
      await this.#fs.mkdir(dir);
    } catch (e) {
      throw new FirnError('E_ENCLAVE_UNAVAILABLE', 'configfs-tsm report directory is not available', {
        cause: e,
      });
    }
    try {
      const provider = await this.#text(join(dir, 'provider'));
      if (provider !== 'tdx_guest')
        throw new FirnError('E_ENCLAVE_UNAVAILABLE', `configfs-tsm provider is ${provider}`);
      const before = await this.#generation(dir);
      await this.#fs.writeFile(join(dir, 'inblob'), reportData);
      const afterWrite = await this.#generation(dir);
      // The ABI bumps generation on every write: exactly one bump means nobody else wrote in between.
      if (afterWrite !== before + 1)
        throw new FirnError('E_CONFLICT', 'configfs-tsm entry written concurrently');
      // Read at most one byte over the cap: a confused or hostile provider cannot make us buffer more.
      const quote = new Uint8Array(await this.#fs.readFile(join(dir, 'outblob'), MAX_QUOTE_BYTES));
      const afterRead = await this.#generation(dir);
      if (afterRead !== afterWrite)
        throw new FirnError('E_CONFLICT', 'configfs-tsm entry changed while reading the quote');
      if (quote.length === 0 || quote.length > MAX_QUOTE_BYTES)
        throw new FirnError(
          'E_ENCLAVE_UNAVAILABLE',
          `configfs-tsm returned a quote of ${quote.length} bytes`,
        );
      return { quote };
    } catch (e) {
      if (e instanceof FirnError) throw e;
      throw new FirnError('E_ENCLAVE_UNAVAILABLE', 'configfs-tsm report failed', { cause: e });
    } finally {
      await this.#fs.rmdir(dir).catch(() => undefined);
    }
  }

  async #generation(dir: string): Promise<number> {
    const g = Number(await this.#text(join(dir, 'generation')));
    if (!Number.isSafeInteger(g) || g < 0)
      throw new FirnError('E_ENCLAVE_UNAVAILABLE', 'configfs-tsm generation unreadable');
    return g;
  }

  /** Only what was configured: TDX itself offers no sealing key (see docs/deploy-tdx-h100.md). */
  async sealingKey(): Promise<Uint8Array> {
    if (!this.#opts.sealingKey)
      throw new FirnError(
        'E_UNSUPPORTED',
        'a TDX guest has no hardware sealing key; configure a KMS-released key',
      );
    const k = await this.#opts.sealingKey();
    if (!(k instanceof Uint8Array) || k.length !== 32)
      throw new FirnError('E_SEAL', 'configured sealing key must be 32 bytes');
    return k;
  }
}
