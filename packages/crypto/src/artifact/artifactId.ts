import { createHash, type Hash } from 'node:crypto';
import { assertBytes, bytesToHex, type Hex, InvalidInputError } from '@firn/core';
import { ByteSource, type ByteStream } from './ByteSource.ts';

/**
 * The artifact id is the plain SHA-256 of the sealed bytes (header and body): content addressing
 * that any blob store can check without firn code, so it carries no domain tag.
 */
export function artifactId(sealed: Uint8Array): Hex {
  assertBytes(sealed, 'sealed artifact');
  return bytesToHex(createHash('sha256').update(sealed).digest());
}

/** Incremental artifact id, for sealed bytes that pass by as a stream. */
export class ArtifactHasher {
  private readonly h: Hash = createHash('sha256');
  private finished = false;
  bytes = 0;

  update(chunk: Uint8Array): this {
    if (this.finished) throw new InvalidInputError('artifact hasher already finished');
    this.h.update(assertBytes(chunk, 'chunk'));
    this.bytes += chunk.length;
    return this;
  }

  digest(): Hex {
    if (this.finished) throw new InvalidInputError('artifact hasher already finished');
    this.finished = true;
    return bytesToHex(this.h.digest());
  }
}

/** The id of a sealed artifact read from a stream, in constant memory. */
export async function artifactIdOfStream(source: ByteStream): Promise<Hex> {
  const src = new ByteSource(source);
  const h = new ArtifactHasher();
  try {
    for (;;) {
      const b = await src.read(1 << 20);
      if (b.length === 0) return h.digest();
      h.update(b);
    }
  } finally {
    await src.close();
  }
}

/** Pass a sealed stream through unchanged while hashing it; read `id()` after it is consumed. */
export function teeArtifactId(source: AsyncIterable<Uint8Array>): {
  stream: AsyncIterable<Uint8Array>;
  id(): Hex;
} {
  const h = new ArtifactHasher();
  let result: Hex | undefined;
  async function* pass() {
    for await (const c of source) {
      h.update(c);
      yield c;
    }
    result = h.digest();
  }
  return {
    stream: pass(),
    id() {
      if (result === undefined) throw new InvalidInputError('stream not fully consumed yet');
      return result;
    },
  };
}
