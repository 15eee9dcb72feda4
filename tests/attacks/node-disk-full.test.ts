import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { type AnvilInstance, type FirnDeployment, startAnvil } from '@firn/chain';
import { NodeApi } from '@firn/client';
import { bytesToHex, type Hex } from '@firn/core';
import { createLogger, NodeDaemon } from '@firn/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestBundle } from '../e2e/network.ts';

// An uploader fills the node's data disk through PUT /v1/artifacts. The disk is a real 12 MiB
// tmpfs (mounting needs root; elsewhere the test is skipped, and the same refusal is covered
// without a mount by packages/node/src/storage/artifactStore.test.ts on /dev/full). Promised:
// a 507 E_STORAGE_FULL, never a crash or an unhandled rejection, the node keeps serving, and it
// starts again on the full disk.
const disk = mkdtempSync(join(tmpdir(), 'firn-full-disk-'));
let mounted = false;
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=12m', 'tmpfs', disk], { stdio: 'ignore' });
  mounted = true;
} catch {
  mounted = false;
}

let anvil: AnvilInstance;
let node: NodeDaemon | undefined;
let bundlePath: string;
let platformPath: string;
let deployment: FirnDeployment;
const crashes: unknown[] = [];
const onCrash = (e: unknown) => crashes.push(e);

function makeNode(): NodeDaemon {
  return new NodeDaemon({
    dataDir: join(disk, 'node'),
    bundlePath,
    enclaveEnv: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
    logger: createLogger({ component: 'node' }, { write: () => undefined }),
    chain: { rpcUrl: anvil.rpcUrl, deployment, operatorKey: anvil.accounts[1]!.privateKey },
    // The node's own quota is far above the disk: the disk fills first.
    quotas: { perAddressBytes: 1024 ** 3, totalBytes: 1024 ** 3 },
    limits: { mutatingRequestsPerSecondPerIp: 1000 },
  });
}

beforeAll(async () => {
  if (!mounted) return;
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  bundlePath = (await buildTestBundle('firn-full-disk-bundle-')).path;
  const root = await createSimulatedRoot();
  const dir = mkdtempSync(join(tmpdir(), 'firn-full-disk-platform-'));
  platformPath = join(dir, 'platform.json');
  writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(root)));
  anvil = await startAnvil({ accounts: 3 });
  const a = (n: number) => `0x${n.toString(16).padStart(40, '0')}` as Hex;
  // Uploads need no contract (the uploader's balance is read at the latest block).
  deployment = {
    chainId: anvil.chainId,
    registry: a(1),
    verifierSet: a(2),
    jobMarket: a(3),
    dataLedger: a(4),
    deployBlock: 0n,
  } as FirnDeployment;
  mkdirSync(join(disk, 'node'), { recursive: true });
  node = makeNode();
  await node.start();
}, 120_000);

afterAll(async () => {
  process.off('uncaughtException', onCrash);
  process.off('unhandledRejection', onCrash);
  await node?.stop();
  await anvil?.stop();
  if (mounted) execFileSync('umount', [disk]);
});

async function upload(n: NodeDaemon, bytes: Uint8Array): Promise<{ status: number; code?: string }> {
  const api = new NodeApi(n.url, 30_000, {
    requesterKey: anvil.accounts[2]!.privateKey,
    scope: { chainId: deployment.chainId, jobMarket: deployment.jobMarket, enclaveId: n.identity!.enclaveId },
  });
  const r = await fetch(`${n.url}/v1/artifacts`, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', ...api.uploadIntentHeaders(bytes) },
    body: bytes,
  });
  const body = (await r.json()) as { error?: { code: string } };
  return { status: r.status, ...(body.error ? { code: body.error.code } : {}) };
}

describe.skipIf(!mounted)('a full data disk (12 MiB tmpfs)', () => {
  it('uploads that fill the disk get 507 E_STORAGE_FULL; the node keeps serving and restarts on the full disk', async () => {
    const statuses: number[] = [];
    let full: { status: number; code?: string } | undefined;
    for (let i = 0; i < 20 && !full; i++) {
      const r = await upload(node!, randomBytes(1024 * 1024));
      statuses.push(r.status);
      if (r.status !== 201) full = r;
    }
    expect(statuses.filter((s) => s === 201).length).toBeGreaterThan(3);
    expect(full).toEqual({ status: 507, code: 'E_STORAGE_FULL' });
    // Still serving: identity, fresh evidence, health (storage reported on its own).
    expect((await fetch(`${node!.url}/v1/node`)).status).toBe(200);
    const att = await fetch(`${node!.url}/v1/attestation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nonce: bytesToHex(randomBytes(32)) }),
    });
    expect(att.status).toBe(200);
    const h = (await (await fetch(`${node!.url}/healthz`)).json()) as { enclave: string };
    expect(h.enclave).toBe('up');
    // A second attempt is refused the same way; nothing crashed.
    expect(await upload(node!, randomBytes(1024 * 1024))).toEqual({ status: 507, code: 'E_STORAGE_FULL' });
    expect(crashes).toEqual([]);

    // Restart on the full disk: it starts, serves, and refuses uploads with the same code.
    await node!.stop();
    node = makeNode();
    await node.start();
    expect((await fetch(`${node.url}/v1/node`)).status).toBe(200);
    expect(await upload(node, randomBytes(1024 * 1024))).toMatchObject({
      status: 507,
      code: 'E_STORAGE_FULL',
    });
    expect(crashes).toEqual([]);
  }, 120_000);
});
