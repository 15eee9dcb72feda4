import { describe, expect, it } from 'vitest';
import { sharedArtifactStoreOf } from './node.ts';

describe('firn node start --artifact-store', () => {
  it('is off by default: the local folder only', () => {
    expect(sharedArtifactStoreOf({})).toBeUndefined();
  });
  it('takes s3://bucket/prefix with an S3-compatible endpoint', () => {
    const s = sharedArtifactStoreOf({
      artifactStore: 's3://firn-art/net1/',
      s3Endpoint: 'http://127.0.0.1:9000',
    });
    expect(s).toMatchObject({ bucket: 'firn-art', prefix: 'net1' });
    expect(s?.key(`0x${'ab'.repeat(32)}`)).toBe(`net1/${'ab'.repeat(32)}`);
  });
  it('refuses --s3-endpoint without a store, and a malformed store URL', () => {
    expect(() => sharedArtifactStoreOf({ s3Endpoint: 'http://x' })).toThrow(/need --artifact-store/);
    expect(() => sharedArtifactStoreOf({ artifactStore: 'https://bucket/x' })).toThrow(/s3:\/\/bucket/);
  });
});
