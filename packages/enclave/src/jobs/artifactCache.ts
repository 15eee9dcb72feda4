import { bytesEqual, type Hex } from '@firn/core';

interface Entry {
  dataKey: Uint8Array;
  contentType: string;
  bytes: Uint8Array;
}

/**
 * Plaintext of large artifacts already opened in this enclave, by artifact id. An entry is handed
 * out only to a caller holding the same data key (unwrapped from a grant that was verified for
 * this job): the key opened these exact bytes before, and the id pins the ciphertext, so a hit
 * is equivalent to opening the file again.
 */
export class ArtifactCache {
  private readonly entries = new Map<Hex, Entry>();
  private size = 0;
  constructor(
    readonly maxBytes = 1024 * 1024 * 1024,
    readonly minEntryBytes = 1024 * 1024,
  ) {}

  get(artifactId: Hex, dataKey: Uint8Array): { contentType: string; bytes: Uint8Array } | undefined {
    const e = this.entries.get(artifactId);
    if (e === undefined || !bytesEqual(e.dataKey, dataKey)) return undefined;
    // Refresh the LRU position.
    this.entries.delete(artifactId);
    this.entries.set(artifactId, e);
    return { contentType: e.contentType, bytes: e.bytes };
  }

  put(artifactId: Hex, dataKey: Uint8Array, contentType: string, bytes: Uint8Array): void {
    if (bytes.length < this.minEntryBytes || bytes.length > this.maxBytes || this.entries.has(artifactId))
      return;
    while (this.size + bytes.length > this.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.size -= this.entries.get(oldest.value)!.bytes.length;
      this.entries.delete(oldest.value);
    }
    this.entries.set(artifactId, { dataKey: Uint8Array.from(dataKey), contentType, bytes });
    this.size += bytes.length;
  }
}
