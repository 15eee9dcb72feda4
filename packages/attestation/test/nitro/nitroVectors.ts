import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Test-only: the real Nitro documents in vectors/nitro (see its SOURCE.md) with their pinned times. */
export interface NitroVector {
  file: string;
  /** A time the document verifies at, unix seconds (from the source's own test). */
  verifyAt: number;
  /** The leaf certificate's notAfter, unix seconds. */
  leafNotAfter: number;
  debug: boolean;
  moduleId: string;
  timestampMs: number;
}

export const NITRO_VECTOR_DIR = fileURLToPath(new URL('../../vectors/nitro/', import.meta.url));

export const NITRO_VECTORS = {
  base: {
    file: 'base-nitro-validator-2024-11-30.cbor',
    verifyAt: 1732990000,
    leafNotAfter: 1732994568,
    debug: false,
    moduleId: 'i-0de38b2b6853cc9e8-enc0193685e7fee7d85',
    timestampMs: 1732983768387,
  },
  eternis0917: {
    file: 'eternis-debug-2024-09-17.cbor',
    verifyAt: 1726606091,
    leafNotAfter: 1726616571,
    debug: true,
    moduleId: 'i-0bbf1bfe232b8c2ce-enc019201afdaee4f17',
    timestampMs: 1726606030288,
  },
  eternis0909: {
    file: 'eternis-debug-2024-09-09.cbor',
    verifyAt: 1725911400,
    leafNotAfter: 1725922152,
    debug: true,
    moduleId: 'i-0bbf1bfe232b8c2ce-enc0191ba35c9d1b77a',
    timestampMs: 1725911352400,
  },
  sui1114: {
    file: 'sui-debug-2024-11-14.cbor',
    // 2 s before the document's timestamp: the source verifies it there (clock skew).
    verifyAt: 1731627987,
    leafNotAfter: 1731630269,
    debug: true,
    moduleId: 'i-0f73a4b4cb74cc9f2-enc0192e4188fef781d',
    timestampMs: 1731627989450,
  },
} as const satisfies Record<string, NitroVector>;

export function nitroVectorBytes(v: NitroVector): Uint8Array {
  return new Uint8Array(readFileSync(`${NITRO_VECTOR_DIR}${v.file}`));
}

export const NITRO_ROOT_PEM_FILE = `${NITRO_VECTOR_DIR}aws-nitro-enclaves-root-g1.pem`;
