import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Hex } from '@firn/core';
// s3rver: a real HTTP server speaking the S3 REST API (SigV4 checked), run in this process.
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from './artifactStore.ts';
import { parseS3Url, S3ArtifactStore } from './s3ArtifactStore.ts';

const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const sha = (b: Uint8Array) => `0x${createHash('sha256').update(b).digest('hex')}` as Hex;

describe('S3ArtifactStore against a local S3-compatible server', () => {
  let dir: string;
  let server: { run(): Promise<AddressInfo>; close(): Promise<void> };
  let endpoint: string;
  let store: S3ArtifactStore;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'firn-s3-'));
    server = new S3rver({
      address: '127.0.0.1',
      port: 0,
      silent: true,
      directory: join(dir, 'server'),
      configureBuckets: [{ name: 'firn-artifacts' }],
    });
    const a = await server.run();
    endpoint = `http://127.0.0.1:${a.port}`;
    store = new S3ArtifactStore({ ...parseS3Url('s3://firn-artifacts/node-a/'), endpoint, credentials });
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('round-trips an artifact byte-identical under its SHA-256 id', async () => {
    const bytes = randomBytes(300_000);
    const r = await store.put(bytes);
    expect(r).toEqual({ id: sha(bytes), size: bytes.length, created: true });
    expect(store.key(r.id)).toBe(`node-a/${r.id.slice(2)}`);
    expect(await store.has(r.id)).toBe(true);
    expect(await store.size(r.id)).toBe(bytes.length);
    expect(Buffer.from(await store.get(r.id)).equals(bytes)).toBe(true);
    // A second put of the same bytes writes nothing.
    expect((await store.put(bytes)).created).toBe(false);
  });

  it('another node reads it into its local folder and a requester reads it by id', async () => {
    const bytes = randomBytes(70_000);
    const a = new ArtifactStore(join(dir, 'node-a'));
    const local = await a.put(Readable.from([bytes]));
    await store.putFromLocal(a, local.id);
    const b = new ArtifactStore(join(dir, 'node-b'));
    const copied = await store.copyToLocal(local.id, b);
    expect(copied).toMatchObject({ id: local.id, size: bytes.length, created: true });
    expect(readFileSync(b.path(local.id)).equals(bytes)).toBe(true);
    // A requester with only the endpoint and the id.
    const requester = new S3ArtifactStore({
      bucket: 'firn-artifacts',
      prefix: 'node-a',
      endpoint,
      credentials,
    });
    expect(Buffer.from(await requester.get(local.id)).equals(bytes)).toBe(true);
  });

  it('refuses a tampered object by its id, and it never lands in a local store', async () => {
    const bytes = randomBytes(50_000);
    const { id } = await store.put(bytes);
    // Attack: whoever can write to the bucket replaces the object's bytes (one bit flipped).
    const evil = Buffer.from(bytes);
    evil[1234] = (evil[1234] as number) ^ 1;
    await store.client.send(
      new PutObjectCommand({
        Bucket: 'firn-artifacts',
        Key: store.key(id),
        Body: evil,
        ContentLength: evil.length,
      }),
    );
    await expect(store.get(id)).rejects.toMatchObject({ code: 'E_ARTIFACT_TAMPERED' });
    const c = new ArtifactStore(join(dir, 'node-c'));
    await expect(store.copyToLocal(id, c)).rejects.toMatchObject({ code: 'E_ARTIFACT_TAMPERED' });
    expect(c.has(id)).toBe(false);
    // Truncation is tampering too.
    await store.client.send(
      new PutObjectCommand({
        Bucket: 'firn-artifacts',
        Key: store.key(id),
        Body: bytes.subarray(0, 10),
        ContentLength: 10,
      }),
    );
    await expect(store.get(id)).rejects.toMatchObject({ code: 'E_ARTIFACT_TAMPERED' });
  });

  it('refuses bytes that do not hash to the expected id, and objects over the limit', async () => {
    const bytes = randomBytes(1000);
    await expect(store.put(bytes, sha(randomBytes(8)))).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
    const { id } = await store.put(bytes);
    await expect(store.get(id, 999)).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
  });

  it('answers E_NOT_FOUND for an unknown id and E_UNAVAILABLE for a missing bucket', async () => {
    const id = sha(randomBytes(4));
    expect(await store.has(id)).toBe(false);
    await expect(store.get(id)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    const wrong = new S3ArtifactStore({
      bucket: 'no-such-bucket',
      prefix: '',
      endpoint,
      credentials,
    });
    await expect(wrong.put(randomBytes(10))).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringMatching(/NoSuchBucket.*check --s3-endpoint/),
    });
  });

  it('parses s3:// locations and refuses malformed ones', () => {
    expect(parseS3Url('s3://bucket')).toEqual({ bucket: 'bucket', prefix: '' });
    expect(parseS3Url('s3://my.bucket/a/b/')).toEqual({ bucket: 'my.bucket', prefix: 'a/b' });
    for (const bad of ['http://bucket/x', 's3://B', 's3://bucket/../x', 's3://'])
      expect(() => parseS3Url(bad)).toThrow(/artifact-store/);
  });
});
