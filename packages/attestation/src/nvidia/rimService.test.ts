import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type GpuEvidenceEntry, sharedPath } from '@firn/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRimServiceClient, driverRimId, vbiosRimId } from './rimService.ts';
import { verifyRim } from './verifyRim.ts';

// A RIM service on 127.0.0.1 answering GET /v1/rim/{id} with NVIDIA's envelope around REAL signed
// RIMs (vectors/nvidia-rim-service/SOURCE.md). Not covered: NVIDIA's live service, TLS, service keys.
const DIR = fileURLToPath(new URL('../../vectors/nvidia-rim-service/', import.meta.url));
const DRIVER = 'NV_GPU_DRIVER_GH100_550.144.03';
const VBIOS = 'NV_GPU_VBIOS_1010_0200_882_96005E0001';
const file = (id: string) => readFileSync(join(DIR, `${id}.xml`));
const envelope = (id: string, rim: Buffer, o: Record<string, unknown> = {}) =>
  JSON.stringify({
    id,
    rim: rim.toString('base64'),
    sha256: createHash('sha256').update(rim).digest('hex'),
    rim_format: 'SWIDTAG',
    last_updated: '2025-01-01T00:00:00Z',
    request_id: 'test',
    ...o,
  });

const hits: string[] = [];
/** Per-id answer overrides for fault and tamper tests: [status, body]. */
const override = new Map<string, [number, string]>();
let failNext = 0;
let server: Server;
let base = '';
beforeAll(async () => {
  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    hits.push(path);
    const m = /^\/v1\/rim\/([^/]+)$/.exec(path);
    if (failNext > 0) {
      failNext--;
      res.writeHead(503).end();
      return;
    }
    const id = m === null ? '' : decodeURIComponent(m[1]!);
    const o = override.get(id);
    if (o !== undefined) {
      res.writeHead(o[0], { 'content-type': 'application/json' }).end(o[1]);
      return;
    }
    if (id !== DRIVER && id !== VBIOS) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(envelope(id, file(id)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  hits.length = 0;
  override.clear();
  failNext = 0;
});
const fast = { minRetryDelayMs: 1, timeoutMs: 2000 };

describe('RIM service client', () => {
  it('fetches real RIMs whose NVIDIA signature verifies, once per id', async () => {
    const c = createRimServiceClient({ baseUrl: base, ...fast });
    const d = await c.getRim(DRIVER);
    const f = verifyRim(d.xml, { now: 1750000000 });
    expect([f.kind, f.version, f.signatureValid, f.chainValid]).toEqual(['driver', '550.144.03', true, true]);
    const v = verifyRim((await c.getRim(VBIOS)).xml, { now: 1717200000 });
    expect([v.kind, v.version, v.signatureValid, v.chainValid]).toEqual([
      'vbios',
      '96.00.5E.00.01',
      true,
      true,
    ]);
    await c.getRim(DRIVER);
    expect(hits).toEqual([`/v1/rim/${DRIVER}`, `/v1/rim/${VBIOS}`]);
  });

  it('names RIMs the way NVIDIA does, and builds a store for evidence (missing RIMs listed)', async () => {
    expect(driverRimId('HOPPER', '550.90.07')).toBe('NV_GPU_DRIVER_GH100_550.90.07');
    expect(driverRimId('BLACKWELL', '575.57.08')).toBe('NV_GPU_CC_DRIVER_GB100_575.57.08');
    expect(
      vbiosRimId('HOPPER', {
        project: '1010',
        projectSku: '0200',
        chipSku: '882',
        vbiosVersion: '96.00.5e.00.01',
      }),
    ).toBe(VBIOS);
    const gpus = JSON.parse(
      readFileSync(
        sharedPath('vectors', 'attestation', 'nvidia-nvtrust', 'ppcie', 'gpu_evidence.json'),
        'utf8',
      ),
    ) as GpuEvidenceEntry[];
    const store = await createRimServiceClient({ baseUrl: base, ...fast }).rimStoreFor(gpus);
    // Eight H100s on driver 590.12 and VBIOS 96.00.A5.00.01: two ids, asked once each; this
    // service does not publish them, so the store is empty and both are reported missing.
    expect(store.missing.sort()).toEqual([
      'NV_GPU_DRIVER_GH100_590.12',
      'NV_GPU_VBIOS_G520_0200_885_9600A50001',
    ]);
    expect(store.entries).toEqual([]);
    expect(hits.length).toBe(2);
  });

  it('reads the offline folder and the cache folder before asking the service', async () => {
    const offline = mkdtempSync(join(tmpdir(), 'firn-rims-'));
    writeFileSync(join(offline, `${VBIOS}.swidtag`), file(VBIOS));
    const c = createRimServiceClient({ baseUrl: base, offlineDir: offline, ...fast });
    expect((await c.getRim(VBIOS)).source).toBe(`offline:${VBIOS}.swidtag`);
    expect(hits).toEqual([]);
    const cacheDir = mkdtempSync(join(tmpdir(), 'firn-rim-cache-'));
    await createRimServiceClient({ baseUrl: base, cacheDir, ...fast }).getRim(DRIVER);
    const again = await createRimServiceClient({ baseUrl: base, cacheDir, ...fast }).getRim(DRIVER);
    expect(again.source).toBe(`cache:${DRIVER}.xml`);
    expect(hits).toEqual([`/v1/rim/${DRIVER}`]);
  });

  it('attack: an edited RIM with a matching digest is delivered, and its signature no longer verifies', async () => {
    const edited = Buffer.from(
      file(DRIVER)
        .toString('utf8')
        .replace(/Hash0="([0-9a-f])/, (_m, c: string) => `Hash0="${c === '0' ? '1' : '0'}`),
    );
    expect(edited.equals(file(DRIVER))).toBe(false);
    override.set(DRIVER, [200, envelope(DRIVER, edited)]);
    const r = await createRimServiceClient({ baseUrl: base, ...fast }).getRim(DRIVER);
    expect(verifyRim(r.xml, { now: 1750000000 }).signatureValid).toBe(false);
  });

  it('refuses an answer for another id, a wrong digest, a non-SWID format, and oversize or malformed bodies', async () => {
    const c = () => createRimServiceClient({ baseUrl: base, ...fast });
    override.set(DRIVER, [200, envelope(VBIOS, file(VBIOS))]);
    await expect(c().getRim(DRIVER)).rejects.toMatchObject({
      code: 'E_EVIDENCE_COLLATERAL',
      message: expect.stringContaining(`not ${DRIVER}`),
    });
    override.set(DRIVER, [200, envelope(DRIVER, file(DRIVER), { sha256: '00'.repeat(32) })]);
    await expect(c().getRim(DRIVER)).rejects.toMatchObject({
      code: 'E_EVIDENCE_COLLATERAL',
      message: expect.stringContaining('sha256'),
    });
    override.set(DRIVER, [200, envelope(DRIVER, file(DRIVER), { rim_format: 'CORIM' })]);
    await expect(c().getRim(DRIVER)).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    override.set(DRIVER, [200, '{"id":']);
    await expect(c().getRim(DRIVER)).rejects.toMatchObject({ code: 'E_EVIDENCE_COLLATERAL' });
    override.set(DRIVER, [200, envelope(DRIVER, Buffer.alloc(2 * 1024 * 1024, 0x20))]);
    await expect(c().getRim(DRIVER)).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
    await expect(c().getRim('../../etc/passwd')).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
  });

  it('retries 503 with backoff, does not retry 404, and names the URL', async () => {
    failNext = 2;
    await createRimServiceClient({ baseUrl: base, retries: 2, ...fast }).getRim(DRIVER);
    expect(hits.length).toBe(3);
    hits.length = 0;
    const e = await createRimServiceClient({ baseUrl: base, retries: 3, ...fast })
      .getRim('NV_GPU_DRIVER_GH100_1.2.3')
      .catch((x: unknown) => x);
    expect(e).toMatchObject({
      code: 'E_NOT_FOUND',
      message: expect.stringContaining(`${base}/v1/rim/NV_GPU_DRIVER_GH100_1.2.3`),
    });
    expect(hits.length).toBe(1);
    failNext = 10;
    await expect(
      createRimServiceClient({ baseUrl: base, retries: 1, ...fast }).getRim(VBIOS),
    ).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringContaining('answered 503'),
    });
  });
});
