import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { S3ArtifactStore } from '@firn/node';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { startTestNetwork, type TestNetwork } from './network.ts';

// A node started with a shared S3-compatible artifact store (a real S3 HTTP server in this
// process): what it stores lands in the bucket byte-identical, an input only the bucket holds is
// fetched and checked, and a tampered object is refused by its id before it reaches the node.
const dir = mkdtempSync(join(tmpdir(), 'firn-s3-e2e-'));
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
let server: S3rver;
let shared: S3ArtifactStore;
let net: TestNetwork;

beforeAll(async () => {
  server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: join(dir, 's3'),
    configureBuckets: [{ name: 'firn' }],
  });
  const { port } = await server.run();
  shared = new S3ArtifactStore({
    bucket: 'firn',
    prefix: 'e2e',
    endpoint: `http://127.0.0.1:${port}`,
    credentials,
  });
  net = await startTestNetwork({ sharedArtifacts: shared });
}, 180_000);
afterAll(async () => {
  await net?.stop();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('node with --artifact-store s3://', () => {
  it('copies every input and output of a job to the bucket, byte-identical', async () => {
    const model = tinyLinearModel({ inFeatures: 4, outFeatures: 2, seed: 3 });
    const input = { x: { dims: [1, 4], type: 'float32', data: [1, 2, 3, 4] } };
    const r = await runJob({
      rpcUrl: net.anvil.rpcUrl,
      deployment: net.deployment,
      requesterKey: net.requester.privateKey,
      policy: net.policy,
      roots: net.roots,
      kind: 'inference',
      inputs: [
        { role: 'model', bytes: model.bytes, contentType: 'application/onnx' },
        {
          role: 'input',
          bytes: new TextEncoder().encode(JSON.stringify(input)),
          contentType: 'application/json',
        },
      ],
      params: {},
      escrow: 10n ** 16n,
    });
    expect(r.proofCheck.ok).toBe(true);
    const local = net.node.jobs!.artifacts;
    const ids = readdirSync(local.dir).map((n) => `0x${n}` as Hex);
    expect(ids).toEqual(expect.arrayContaining(r.outputIds));
    expect(ids.length).toBeGreaterThanOrEqual(3); // model, input, output
    for (const id of ids)
      expect(Buffer.from(await shared.get(id)).equals(readFileSync(local.path(id)))).toBe(true);
  }, 120_000);

  it('fetches an input only the bucket holds, and refuses a tampered one by its id', async () => {
    const jobs = net.node.jobs!;
    const bytes = randomBytes(4096);
    const { id } = await shared.put(bytes);
    expect(jobs.artifacts.has(id)).toBe(false);
    // The pre-claim check fetches the input first (the made-up job then fails its own checks).
    await jobs.checkOpenJob({ jobId: `0x${'11'.repeat(32)}`, inputs: [id] }).catch(() => undefined);
    expect(readFileSync(jobs.artifacts.path(id)).equals(bytes)).toBe(true);

    // Attack: the bucket's bytes under an id are replaced.
    const want = randomBytes(4096);
    const evilId = `0x${createHash('sha256').update(want).digest('hex')}` as Hex;
    await shared.client.send(
      new PutObjectCommand({
        Bucket: 'firn',
        Key: shared.key(evilId),
        Body: randomBytes(4096),
        ContentLength: 4096,
      }),
    );
    await expect(
      jobs.checkOpenJob({ jobId: `0x${'11'.repeat(32)}`, inputs: [evilId] }),
    ).rejects.toMatchObject({
      code: 'E_ARTIFACT_TAMPERED',
    });
    expect(jobs.artifacts.has(evilId)).toBe(false);
  });
});
