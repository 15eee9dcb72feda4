import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { FirnError, type Hex, InvalidInputError, TooLargeError } from '@firn/core';
import { type ArtifactStore, DEFAULT_MAX_ARTIFACT_BYTES, parseArtifactId } from './artifactStore.ts';

/** Where artifacts live on an S3-compatible object store: `s3://bucket/prefix`. */
export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing slash ('' for the bucket root). */
  prefix: string;
}

/**
 * Parse `s3://bucket[/prefix]` (`--artifact-store`). Bucket names follow S3's rules (3..63 of
 * a-z 0-9 . -); E_INVALID_INPUT names what to fix.
 */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url.trim());
  if (!m)
    throw new InvalidInputError(
      `--artifact-store must be s3://bucket[/prefix] with an S3 bucket name (got ${JSON.stringify(url)})`,
    );
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((p) => p === '..' || p === '.'))
    throw new InvalidInputError('--artifact-store prefix must not contain . or .. segments');
  return { bucket: m[1] as string, prefix };
}

export interface S3ArtifactStoreOptions extends S3Location {
  /** Endpoint of an S3-compatible server (MinIO, Ceph, R2, ...); default: AWS for `region`. */
  endpoint?: string;
  /** Default `us-east-1` (what most S3-compatible servers accept). */
  region?: string;
  /** Default: the AWS SDK's default chain (env AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, ...). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Path-style URLs (`endpoint/bucket/key`); default true when `endpoint` is set. */
  forcePathStyle?: boolean;
  /** An already configured client (tests, custom middleware). */
  client?: S3Client;
  /** A read whose object brings no byte for this long fails E_UNAVAILABLE, ms. Default 30 000. */
  idleTimeoutMs?: number;
}

/**
 * Sealed artifacts on an S3-compatible object store, addressed by their SHA-256 id (object key
 * `prefix/<64 hex>`), so any node or requester holding the id can fetch them and check them.
 *
 * Proves: every byte it returns or copies into a local store hashes to the id asked for; an object
 * whose bytes were replaced or truncated on the server is refused (E_ARTIFACT_TAMPERED) and never
 * reaches the caller or the local store. Does not prove: confidentiality (artifacts are sealed
 * before they are stored: the bucket holds ciphertext only) or availability (the bucket's owner
 * may delete an object: E_NOT_FOUND).
 */
export class S3ArtifactStore {
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  readonly idleTimeoutMs: number;

  constructor(opts: S3ArtifactStoreOptions) {
    this.bucket = opts.bucket;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 30_000;
    this.prefix = opts.prefix;
    this.client =
      opts.client ??
      new S3Client({
        region: opts.region ?? 'us-east-1',
        ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
        forcePathStyle: opts.forcePathStyle ?? opts.endpoint !== undefined,
        ...(opts.credentials ? { credentials: opts.credentials } : {}),
        // Plain bodies with Content-Length: S3-compatible servers that predate the SDK's default
        // CRC32 trailers (aws-chunked) would otherwise store the chunk framing. Integrity is the
        // SHA-256 id, checked on every read.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        // A bucket that accepts the connection and never answers fails instead of hanging.
        requestHandler: { connectionTimeout: 10_000, requestTimeout: this.idleTimeoutMs },
      });
    // An error answer (and any answer but an object's bytes) is parsed whole by the SDK: keep only
    // its head, so a bucket cannot make the node buffer an endless body.
    this.client.middlewareStack.add(
      (next) => async (args) => {
        const out = await next(args);
        const r = out.response as { statusCode?: number; body?: unknown };
        const read = (args.request as { method?: string }).method === 'GET';
        if ((!read || (r.statusCode ?? 200) >= 300) && r.body instanceof Readable)
          r.body = Readable.from(head(r.body, MAX_ERROR_BODY_BYTES));
        return out;
      },
      { step: 'deserialize', priority: 'low', name: 'firnCapErrorBody' },
    );
  }

  /** Object key of an id: `prefix/<64 lowercase hex>`. */
  key(id: Hex): string {
    const hex = parseArtifactId(id).slice(2).toLowerCase();
    return this.prefix ? `${this.prefix}/${hex}` : hex;
  }

  /** Size in bytes, or undefined when the object does not exist. */
  async size(id: Hex): Promise<number | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(id) }));
      return r.ContentLength;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw unavailable(e);
    }
  }

  async has(id: Hex): Promise<boolean> {
    return (await this.size(id)) !== undefined;
  }

  /**
   * Store bytes under the id they hash to. With `expectedId`, bytes that hash to anything else are
   * refused (E_INVALID_INPUT) before anything is written. Returns `created: false` when the object
   * already exists (an id's bytes never change, so it is not written again).
   */
  async put(bytes: Uint8Array, expectedId?: Hex): Promise<{ id: Hex; size: number; created: boolean }> {
    if (bytes.length === 0) throw new InvalidInputError('artifact is empty');
    if (bytes.length > DEFAULT_MAX_ARTIFACT_BYTES)
      throw new TooLargeError('artifact', bytes.length, DEFAULT_MAX_ARTIFACT_BYTES);
    const id = `0x${createHash('sha256').update(bytes).digest('hex')}` as Hex;
    if (expectedId !== undefined && id !== parseArtifactId(expectedId).toLowerCase())
      throw new InvalidInputError('the bytes do not hash to the artifact id');
    if (await this.has(id)) return { id, size: bytes.length, created: false };
    await this.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.key(id),
        Body: bytes,
        ContentLength: bytes.length,
        ContentType: 'application/octet-stream',
      }),
    );
    return { id, size: bytes.length, created: true };
  }

  /**
   * Upload an artifact of a local store (streamed from its file, hashed on the way: a local file
   * that no longer hashes to its id is refused with E_ARTIFACT_TAMPERED after the upload and the
   * object is not trusted by any reader, who re-checks the id).
   */
  async putFromLocal(local: ArtifactStore, id: Hex): Promise<{ id: Hex; size: number; created: boolean }> {
    const want = parseArtifactId(id).toLowerCase() as Hex;
    if (await this.has(want)) return { id: want, size: local.size(want), created: false };
    const path = local.path(want);
    const size = statSync(path).size;
    const hash = createHash('sha256');
    const body = createReadStream(path);
    body.on('data', (c) => hash.update(c));
    await this.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.key(want),
        Body: body,
        ContentLength: size,
        ContentType: 'application/octet-stream',
      }),
    );
    if (`0x${hash.digest('hex')}` !== want)
      throw new FirnError('E_ARTIFACT_TAMPERED', 'the local artifact does not hash to its id');
    return { id: want, size, created: true };
  }

  /**
   * Fetch an artifact whole and check it: E_NOT_FOUND when absent, E_TOO_LARGE over `limit`
   * bytes (checked on the declared length and again while reading), E_ARTIFACT_TAMPERED when the
   * bytes do not hash to `id`.
   */
  async get(id: Hex, limit = 256 * 1024 * 1024): Promise<Uint8Array> {
    const want = parseArtifactId(id).toLowerCase();
    const chunks: Uint8Array[] = [];
    const hash = createHash('sha256');
    let size = 0;
    for await (const c of await this.stream(want as Hex, limit)) {
      size += c.length;
      if (size > limit) throw new TooLargeError('artifact', size, limit);
      hash.update(c);
      chunks.push(c);
    }
    if (`0x${hash.digest('hex')}` !== want)
      throw new FirnError('E_ARTIFACT_TAMPERED', 'the stored object does not hash to its artifact id');
    return Buffer.concat(chunks, size);
  }

  /**
   * Copy an artifact into a local store (the node's working folder). The local store hashes the
   * bytes while it writes them and links them under the id only when they match, so a tampered
   * object never lands (E_ARTIFACT_TAMPERED).
   */
  async copyToLocal(
    id: Hex,
    local: ArtifactStore,
    limit = DEFAULT_MAX_ARTIFACT_BYTES,
  ): Promise<{ id: Hex; size: number; created: boolean }> {
    const want = parseArtifactId(id).toLowerCase() as Hex;
    if (local.has(want)) return { id: want, size: local.size(want), created: false };
    const body = await this.stream(want, limit);
    try {
      return await local.put(body, limit, want);
    } catch (e) {
      if (e instanceof FirnError && e.code === 'E_INVALID_INPUT')
        throw new FirnError('E_ARTIFACT_TAMPERED', 'the stored object does not hash to its artifact id', {
          cause: e,
        });
      throw e;
    }
  }

  private async stream(id: Hex, limit: number): Promise<AsyncIterable<Uint8Array>> {
    let r: GetObjectCommandOutput;
    try {
      r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(id) }));
    } catch (e) {
      if (isNotFound(e)) throw new FirnError('E_NOT_FOUND', 'no such artifact in the object store');
      throw unavailable(e);
    }
    const body = r.Body as AsyncIterable<Uint8Array> | undefined;
    if (r.ContentLength !== undefined && r.ContentLength > limit) {
      // Release the connection: an unread body would keep one of the client's sockets for good.
      (body as { destroy?: () => void } | undefined)?.destroy?.();
      throw new TooLargeError('artifact', r.ContentLength, limit);
    }
    if (!body || typeof (body as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] !== 'function')
      throw new FirnError('E_UNAVAILABLE', 'the object store answered without a body');
    return guardBody(body, this.idleTimeoutMs);
  }

  private async send(cmd: PutObjectCommand): Promise<void> {
    try {
      await this.client.send(cmd);
    } catch (e) {
      throw unavailable(e);
    }
  }
}

/** Most bytes of an error answer the SDK gets to parse. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** The first `max` bytes of `body`; the rest is never read (the stream is destroyed). */
async function* head(body: Readable, max: number): AsyncGenerator<Buffer> {
  let n = 0;
  try {
    for await (const c of body as AsyncIterable<Buffer>) {
      const take = c.subarray(0, max - n);
      n += take.length;
      if (take.length > 0) yield take;
      if (n >= max) return;
    }
  } finally {
    body.destroy();
  }
}

/**
 * The object's bytes, failing E_UNAVAILABLE when the store stops sending for `idleMs` or drops the
 * connection mid-body (a store failure, never a raw socket error that reads as a client abort).
 */
async function* guardBody(body: AsyncIterable<Uint8Array>, idleMs: number): AsyncGenerator<Uint8Array> {
  const it = body[Symbol.asyncIterator]();
  const close = () => (body as { destroy?: () => void }).destroy?.();
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      let r: IteratorResult<Uint8Array>;
      try {
        r = await Promise.race([
          it.next(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new FirnError('E_UNAVAILABLE', `the object store sent nothing for ${idleMs} ms`)),
              idleMs,
            );
          }),
        ]);
      } catch (e) {
        close();
        if (e instanceof FirnError) throw e;
        throw unavailable(e);
      } finally {
        clearTimeout(timer);
      }
      if (r.done) return;
      yield r.value;
    }
  } finally {
    close();
  }
}

function isNotFound(e: unknown): boolean {
  const o = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return o?.name === 'NotFound' || o?.name === 'NoSuchKey' || o?.$metadata?.httpStatusCode === 404;
}

function unavailable(e: unknown): FirnError {
  const o = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = o?.$metadata?.httpStatusCode;
  return new FirnError(
    'E_UNAVAILABLE',
    `the object store refused the request (${o?.name ?? 'error'}${status ? `, HTTP ${status}` : ''}): check --s3-endpoint, the bucket and the credentials`,
    { cause: e },
  );
}
