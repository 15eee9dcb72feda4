import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  appraiseEvidence,
  certificateDer,
  DEV_POLICY,
  PRODUCTION_POLICY,
  type SimulatedPlatform,
  verifierFor,
} from '@firn/attestation';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { bytesToHex, computeReportData, measurementDigest, sharedPath } from '@firn/core';
import {
  createEnclaveProgram,
  createSimulatedProvider,
  type EvidenceProvider,
  KMS_REQUEST_ADDRESS,
  requestKmsSealingKey,
  withKmsSealingKey,
} from '@firn/enclave';
import { createLogger } from '@firn/node';
import { afterAll, describe, expect, it } from 'vitest';
import { deriveKmsSealingKey, KeyBroker } from './keyBroker.ts';
import { brokerCodeSha256, KmsDaemon, type KmsInfo } from './kmsDaemon.ts';

/**
 * The key broker against TDs on the simulated TEE (real processes would only add a socket): a TD
 * whose quote shows an allow-listed measurement gets the same key on every request, and every
 * attack below gets nothing. What this does not cover: a real TDX quote binding a broker nonce
 * (no TDX hardware here; a captured real TDX quote is refused because it binds other report data).
 */
const FIX = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'enclave',
  'src',
  'evidence',
  'fixtures',
);
const sha = (s: string) => new Uint8Array(createHash('sha256').update(s).digest());
const GOOD_CODE = sha('firn enclave build A');
const OTHER_CODE = sha('firn enclave build B (not allow-listed)');
const GOOD_MEASUREMENT = bytesToHex(measurementDigest('simulated', [GOOD_CODE]));

const root = await createSimulatedRoot();
const kmsMachine = await createSimulatedPlatform(root);
const tdMachine = await createSimulatedPlatform(root);
const otherMachine = await createSimulatedPlatform(root);
const dataDir = mkdtempSync(join(tmpdir(), 'firn-kms-'));
const logs: string[] = [];
const logger = createLogger({ component: 'kms' }, { write: (l) => logs.push(l) });
const policy = { ...DEV_POLICY, measurementAllowList: [GOOD_MEASUREMENT] };
const roots = { simulated: [certificateDer(root.certificatePem)] };
const daemons: KmsDaemon[] = [];

async function startBroker(platform: SimulatedPlatform = kmsMachine, dir = dataDir): Promise<KmsInfo> {
  // Every test here comes from 127.0.0.1: the per-client rates (tested on their own below) are
  // lifted so that tests running back to back never meet them.
  const limits = {
    noncesPerSecondPerIp: 1e4,
    keyRequestsPerSecondPerIp: 1e4,
    attestationsPerSecondPerIp: 1e4,
  };
  const d = new KmsDaemon({ dataDir: dir, platform, policy, roots, logger, limits });
  daemons.push(d);
  return d.start();
}
afterAll(async () => {
  for (const d of daemons) await d.stop();
});

const td = (code = GOOD_CODE, machine = tdMachine): EvidenceProvider =>
  createSimulatedProvider(machine, code);

// biome-ignore lint/suspicious/noExplicitAny: test reads arbitrary JSON answers
type Json = any;

async function post(url: string, path: string, body: unknown): Promise<{ status: number; json: Json }> {
  const r = await fetch(new URL(path, url), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}

const info = await startBroker();

describe('key broker: release', () => {
  it('releases to an allow-listed TD the key HKDF(master, measurement || platform), the same every time', async () => {
    const k1 = await requestKmsSealingKey({ url: info.url, brokerAddress: info.address, provider: td() });
    const k2 = await requestKmsSealingKey({ url: info.url, brokerAddress: info.address, provider: td() });
    expect(k1).toHaveLength(32);
    expect(bytesToHex(k2)).toBe(bytesToHex(k1));
    // Another platform with the same code gets another key (the platform id is in the derivation).
    const k3 = await requestKmsSealingKey({
      url: info.url,
      brokerAddress: info.address,
      provider: td(GOOD_CODE, otherMachine),
    });
    expect(bytesToHex(k3)).not.toBe(bytesToHex(k1));
    // The key never appears in the broker's logs or data dir.
    const k1hex = bytesToHex(k1).slice(2);
    expect(logs.join('')).not.toContain(k1hex);
    for (const f of readdirSync(dataDir)) expect(readFileSync(join(dataDir, f), 'utf8')).not.toContain(k1hex);
  });

  it('the released key unseals the enclave keys across enclave and broker restarts', async () => {
    const env = () => ({
      provider: withKmsSealingKey(td(), { url: info.url, brokerAddress: info.address }),
      measurementRegisters: [GOOD_CODE],
      platformId: Buffer.from(tdMachine.platformId.slice(2), 'hex'),
    });
    const first = (await createEnclaveProgram(env()).handle('init', {})) as {
      enclaveAddress: string;
      sealedKeys: unknown;
    };
    const again = (await createEnclaveProgram(env()).handle('init', { sealedKeys: first.sealedKeys })) as {
      enclaveAddress: string;
    };
    expect(again.enclaveAddress).toBe(first.enclaveAddress);
    // The broker restarts (same sealed master secret, same machine): same address, same key.
    await daemons[0]!.stop();
    const restarted = await startBroker();
    expect(restarted.address).toBe(info.address);
    const after = (await createEnclaveProgram({
      ...env(),
      provider: withKmsSealingKey(td(), { url: restarted.url, brokerAddress: restarted.address }),
    }).handle('init', { sealedKeys: first.sealedKeys })) as { enclaveAddress: string };
    expect(after.enclaveAddress).toBe(first.enclaveAddress);
    info.url = restarted.url;
  });
});

describe('key broker: its own evidence', () => {
  it('quotes its identity address for a caller nonce on its simulated TEE, with its code measurement', async () => {
    const nonce = new Uint8Array(32).fill(0x5a);
    const { json: ev } = await post(info.url, '/v1/kms/attestation', { nonce: bytesToHex(nonce) });
    const a = await appraiseEvidence(ev, {
      now: Math.floor(Date.now() / 1000),
      policy: DEV_POLICY,
      expectedNonce: nonce,
      roots,
    });
    expect(a.ok).toBe(true);
    expect(ev.enclaveAddress).toBe(info.address);
    expect(a.ok && bytesToHex(a.facts.measurement)).toBe(info.measurement);
    expect(info.measurement).toBe(bytesToHex(measurementDigest('simulated', [brokerCodeSha256()])));
    // For another nonce the same evidence is refused.
    const b = await appraiseEvidence(ev, {
      now: Math.floor(Date.now() / 1000),
      policy: DEV_POLICY,
      expectedNonce: new Uint8Array(32),
      roots,
    });
    expect(b.ok).toBe(false);
  });
});

describe('key broker: attacks that must get nothing', () => {
  it('a TD with another measurement is refused', async () => {
    await expect(
      requestKmsSealingKey({ url: info.url, brokerAddress: info.address, provider: td(OTHER_CODE) }),
    ).rejects.toMatchObject({ code: 'E_POLICY_REJECTED' });
    expect(logs.join('')).toContain('sealing key refused');
  });

  it('a replayed request (its nonce already used) is refused, and so is an unknown nonce', async () => {
    let captured: unknown;
    const spy: typeof fetch = async (url, init) => {
      if (String(url).endsWith('/v1/kms/key')) captured = JSON.parse(String(init!.body));
      return fetch(url, init);
    };
    await requestKmsSealingKey({ url: info.url, brokerAddress: info.address, provider: td(), fetch: spy });
    const replay = await post(info.url, '/v1/kms/key', captured);
    expect(replay.status).toBe(403);
    expect(replay.json.error.code).toBe('E_EVIDENCE_NONCE');
    // A request quoting a nonce the broker never issued.
    const p = td();
    const nonce = new Uint8Array(32).fill(7);
    const kem = new Uint8Array(32).fill(9);
    const { quote } = await p.quote(
      computeReportData({ enclaveAddress: KMS_REQUEST_ADDRESS, kemPublicKey: kem, nonce }),
    );
    const forged = await post(info.url, '/v1/kms/key', {
      v: 1,
      evidence: {
        version: 1,
        teeType: 'simulated',
        quote: bytesToHex(quote),
        nonce: bytesToHex(nonce),
        enclaveAddress: bytesToHex(KMS_REQUEST_ADDRESS),
        kemPublicKey: bytesToHex(kem),
      },
    });
    expect(forged.json.error.code).toBe('E_EVIDENCE_NONCE');
  });

  it('an allow-listed TD asking for the key under a low-order X25519 KEM key is refused, nothing sealed', async () => {
    // The all-zero u-coordinate is of low order: HPKE to it gives a shared secret anyone can compute.
    const { nonce } = (await post(info.url, '/v1/kms/nonce', {})).json as { nonce: string };
    const kem = new Uint8Array(32);
    const nonceBytes = Uint8Array.from(Buffer.from(nonce.slice(2), 'hex'));
    const { quote } = await td().quote(
      computeReportData({ enclaveAddress: KMS_REQUEST_ADDRESS, kemPublicKey: kem, nonce: nonceBytes }),
    );
    const r = await post(info.url, '/v1/kms/key', {
      v: 1,
      evidence: {
        version: 1,
        teeType: 'simulated',
        quote: bytesToHex(quote),
        nonce,
        enclaveAddress: bytesToHex(KMS_REQUEST_ADDRESS),
        kemPublicKey: bytesToHex(kem),
      },
    });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toContain('low-order');
    expect(r.json.enc).toBeUndefined();
    expect(JSON.stringify(r.json)).not.toContain('ciphertext');
  });

  it('an expired nonce is refused', async () => {
    let t = Math.floor(Date.now() / 1000);
    const dir = mkdtempSync(join(tmpdir(), 'firn-kms-clock-'));
    const d = new KmsDaemon({ dataDir: dir, platform: kmsMachine, policy, roots, logger, now: () => t });
    daemons.push(d);
    const i = await d.start();
    const slow: typeof fetch = async (url, init) => {
      if (String(url).endsWith('/v1/kms/key')) t += 3600;
      return fetch(url, init);
    };
    await expect(
      requestKmsSealingKey({ url: i.url, brokerAddress: i.address, provider: td(), fetch: slow }),
    ).rejects.toMatchObject({ code: 'E_EVIDENCE_NONCE' });
  });

  it('a host without evidence gets nothing', async () => {
    const { json: n } = await post(info.url, '/v1/kms/nonce', {});
    const none = await post(info.url, '/v1/kms/key', { v: 1 });
    expect(none.status).toBe(400);
    expect(none.json.error.code).toBe('E_EVIDENCE_MALFORMED');
    // Evidence whose quote is not a TEE quote at all (the host made it up).
    const fake = await post(info.url, '/v1/kms/key', {
      v: 1,
      evidence: {
        version: 1,
        teeType: 'simulated',
        quote: `0x${'00'.repeat(600)}`,
        nonce: n.nonce,
        enclaveAddress: bytesToHex(KMS_REQUEST_ADDRESS),
        kemPublicKey: `0x${'11'.repeat(32)}`,
      },
    });
    expect(fake.status).toBeGreaterThanOrEqual(400);
    expect(fake.json.error.code).toMatch(/^E_EVIDENCE_/);
    expect(fake.json.enc).toBeUndefined();
  });

  it('a quote from a platform outside the pinned root is refused', async () => {
    const rogueRoot = await createSimulatedRoot();
    const rogue = createSimulatedProvider(await createSimulatedPlatform(rogueRoot), GOOD_CODE);
    await expect(
      requestKmsSealingKey({ url: info.url, brokerAddress: info.address, provider: rogue }),
    ).rejects.toMatchObject({ code: expect.stringMatching(/^E_EVIDENCE_/) });
  });

  it('evidence that binds another key or an enclave address (not a key request) is refused', async () => {
    const { json: n } = await post(info.url, '/v1/kms/nonce', {});
    const nonce = Buffer.from(n.nonce.slice(2), 'hex');
    const kem = new Uint8Array(32).fill(3);
    const { quote } = await td().quote(
      computeReportData({ enclaveAddress: new Uint8Array(20).fill(1), kemPublicKey: kem, nonce }),
    );
    const base = {
      version: 1,
      teeType: 'simulated',
      quote: bytesToHex(quote),
      nonce: n.nonce,
      kemPublicKey: bytesToHex(kem),
    };
    const asAttestation = await post(info.url, '/v1/kms/key', {
      v: 1,
      evidence: { ...base, enclaveAddress: `0x${'01'.repeat(20)}` },
    });
    expect(asAttestation.json.error.code).toBe('E_EVIDENCE_BINDING');
    // Same quote, claimed as a key request for the host's own HPKE key: report data does not match.
    const { json: n2 } = await post(info.url, '/v1/kms/nonce', {});
    const { quote: q2 } = await td().quote(
      computeReportData({
        enclaveAddress: KMS_REQUEST_ADDRESS,
        kemPublicKey: kem,
        nonce: Buffer.from(n2.nonce.slice(2), 'hex'),
      }),
    );
    const swapped = await post(info.url, '/v1/kms/key', {
      v: 1,
      evidence: {
        ...base,
        quote: bytesToHex(q2),
        nonce: n2.nonce,
        enclaveAddress: bytesToHex(KMS_REQUEST_ADDRESS),
        kemPublicKey: `0x${'44'.repeat(32)}`,
      },
    });
    expect(swapped.json.error).toMatchObject({ code: 'E_EVIDENCE_BINDING' });
  });

  it('a captured genuine TDX quote, allow-listed and with valid collateral, replayed as a key request is refused', async () => {
    // A real TDX v4 quote and its Intel collateral (shared vectors), at a time the collateral is
    // valid: the quote verifies and its measurement is on this broker's allow-list, but its report
    // data binds neither the broker's nonce nor the requester's key, so nothing is released.
    const now = 1752919234;
    const quote = readFileSync(join(FIX, 'tdx_quote.bin'));
    const collateral = JSON.parse(
      readFileSync(
        sharedPath('vectors', 'attestation', 'phala-dcap-qvl', 'tdx_quote_collateral.json'),
        'utf8',
      ),
    );
    const v = verifierFor('tdx');
    const facts = await v.verify(v.parse(quote), { now, collateral });
    const d = new KmsDaemon({
      dataDir: mkdtempSync(join(tmpdir(), 'firn-kms-tdx-')),
      platform: kmsMachine,
      policy: { ...PRODUCTION_POLICY, measurementAllowList: [bytesToHex(facts.measurement)] },
      collateral,
      logger,
      now: () => now,
    });
    daemons.push(d);
    const i = await d.start();
    const { json: n } = await post(i.url, '/v1/kms/nonce', {});
    const r = await post(i.url, '/v1/kms/key', {
      v: 1,
      evidence: {
        version: 1,
        teeType: 'tdx',
        quote: bytesToHex(quote),
        nonce: n.nonce,
        enclaveAddress: bytesToHex(KMS_REQUEST_ADDRESS),
        kemPublicKey: `0x${'22'.repeat(32)}`,
      },
    });
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe('E_EVIDENCE_BINDING');
    expect(r.json.enc).toBeUndefined();
  });

  it('a TD refuses a key from a broker other than the pinned one (an impostor run by the host)', async () => {
    const impostor = await startBroker(kmsMachine, mkdtempSync(join(tmpdir(), 'firn-kms-rogue-')));
    expect(impostor.address).not.toBe(info.address);
    await expect(
      requestKmsSealingKey({ url: impostor.url, brokerAddress: info.address, provider: td() }),
    ).rejects.toMatchObject({ code: 'E_CRYPTO' });
  });

  it('an answer altered on the way (ciphertext, measurement or signature) is refused by the TD', async () => {
    for (const field of ['ciphertext', 'measurement', 'signature'] as const) {
      const mitm: typeof fetch = async (url, init) => {
        const r = await fetch(url, init);
        if (!String(url).endsWith('/v1/kms/key')) return r;
        const body = (await r.json()) as Record<string, string>;
        const h = body[field]!;
        // Flip the first byte (for the signature, r; its last byte v has equivalent encodings).
        body[field] = `0x${h.slice(2, 4) === '00' ? '01' : '00'}${h.slice(4)}`;
        return new Response(JSON.stringify(body), { status: r.status });
      };
      await expect(
        requestKmsSealingKey({ url: info.url, brokerAddress: info.address, provider: td(), fetch: mitm }),
      ).rejects.toMatchObject({ code: 'E_CRYPTO' });
    }
  });

  it('a TD refuses a key derived for another identity than its own', async () => {
    const platformId = Buffer.from(tdMachine.platformId.slice(2), 'hex');
    const mine = () => ({ measurement: measurementDigest('simulated', [GOOD_CODE]), platformId });
    await expect(
      requestKmsSealingKey({ url: info.url, brokerAddress: info.address, provider: td(), expected: mine }),
    ).resolves.toHaveLength(32);
    const other = () => ({ measurement: measurementDigest('simulated', [OTHER_CODE]), platformId });
    await expect(
      requestKmsSealingKey({ url: info.url, brokerAddress: info.address, provider: td(), expected: other }),
    ).rejects.toMatchObject({ code: 'E_SEAL' });
  });

  it('refuses an oversized request body before parsing it', async () => {
    const r = await post(info.url, '/v1/kms/key', { v: 1, pad: 'x'.repeat(2 << 20) });
    expect(r.status).toBe(413);
    expect(r.json.error.code).toBe('E_TOO_LARGE');
  });

  it('with a second allow-list (the registry on chain), both must say yes', async () => {
    const seen: string[] = [];
    const d = new KmsDaemon({
      dataDir: mkdtempSync(join(tmpdir(), 'firn-kms-chain-')),
      platform: kmsMachine,
      policy,
      roots,
      logger,
      isMeasurementAllowed: async (teeType, m) => {
        seen.push(`${teeType}:${m}`);
        return false;
      },
    });
    daemons.push(d);
    const i = await d.start();
    await expect(
      requestKmsSealingKey({ url: i.url, brokerAddress: i.address, provider: td() }),
    ).rejects.toMatchObject({ code: 'E_POLICY_REJECTED', message: expect.stringMatching(/on-chain/) });
    expect(seen).toEqual([`simulated:${GOOD_MEASUREMENT}`]);
  });

  /** A key request from the allow-listed TD quoting `nonce` (hex) with a fresh KEM key. */
  async function keyRequestFor(nonce: string, code = GOOD_CODE): Promise<unknown> {
    const kem = new Uint8Array(randomBytes(32));
    const { quote } = await td(code).quote(
      computeReportData({
        enclaveAddress: KMS_REQUEST_ADDRESS,
        kemPublicKey: kem,
        nonce: Buffer.from(nonce.slice(2), 'hex'),
      }),
    );
    return {
      v: 1,
      evidence: {
        version: 1,
        teeType: 'simulated',
        quote: bytesToHex(quote),
        nonce,
        enclaveAddress: bytesToHex(KMS_REQUEST_ADDRESS),
        kemPublicKey: bytesToHex(kem),
      },
    };
  }

  it('attack: a flood of nonce requests takes no issued nonce away (stateless nonces, decision 1716)', async () => {
    const b = new KeyBroker({ masterSecret: new Uint8Array(32).fill(1), policy, roots });
    const first = b.issueNonce();
    for (let i = 0; i < 20_000; i++) b.issueNonce();
    const request = await keyRequestFor(first.nonce);
    await expect(b.release(request)).resolves.toMatchObject({ response: { nonce: first.nonce } });
    // Still single use.
    await expect(b.release(request)).rejects.toMatchObject({ code: 'E_EVIDENCE_NONCE' });
  });

  it('attack: a nonce with an altered expiry or MAC, or from another broker process, is refused', async () => {
    let t = Math.floor(Date.now() / 1000);
    const b = new KeyBroker({ masterSecret: new Uint8Array(32).fill(1), policy, roots, now: () => t });
    const n = Buffer.from(b.issueNonce().nonce.slice(2), 'hex');
    // The expiry pushed a day later (bytes 12..15), MAC unchanged.
    const later = Buffer.from(n);
    later.writeUInt32BE(later.readUInt32BE(12) + 86_400, 12);
    const macFlipped = Buffer.from(n);
    macFlipped[31]! ^= 1;
    for (const forged of [later, macFlipped])
      await expect(b.release(await keyRequestFor(`0x${forged.toString('hex')}`))).rejects.toMatchObject({
        code: 'E_EVIDENCE_NONCE',
        message: expect.stringMatching(/unknown broker nonce/),
      });
    // Same master secret, another process (a restart): the nonce key is per process.
    const restarted = new KeyBroker({
      masterSecret: new Uint8Array(32).fill(1),
      policy,
      roots,
      now: () => t,
    });
    await expect(restarted.release(await keyRequestFor(`0x${n.toString('hex')}`))).rejects.toMatchObject({
      code: 'E_EVIDENCE_NONCE',
    });
    // Expired one second after its expiry.
    const e = b.issueNonce();
    t = e.expiresAt + 1;
    await expect(b.release(await keyRequestFor(e.nonce))).rejects.toMatchObject({
      code: 'E_EVIDENCE_NONCE',
      message: expect.stringMatching(/expired/),
    });
  });

  it('remembers spent nonces until they expire: over maxUsedNonces it refuses, never forgets early', async () => {
    let t = Math.floor(Date.now() / 1000);
    const b = new KeyBroker({
      masterSecret: new Uint8Array(32).fill(1),
      policy,
      roots,
      now: () => t,
      maxUsedNonces: 2,
    });
    const spent = b.issueNonce();
    const spentRequest = await keyRequestFor(spent.nonce);
    await b.release(spentRequest);
    await b.release(await keyRequestFor(b.issueNonce().nonce));
    // Full: a third request is refused without being spent, and the first stays spent.
    const third = b.issueNonce();
    await expect(b.release(await keyRequestFor(third.nonce))).rejects.toMatchObject({
      code: 'E_RATE_LIMITED',
    });
    await expect(b.release(spentRequest)).rejects.toMatchObject({
      code: 'E_EVIDENCE_NONCE',
      message: expect.stringMatching(/already used/),
    });
    // Once the spent ones expire there is room again (and they would be refused as expired).
    t = spent.expiresAt + 1;
    const fresh = b.issueNonce();
    await expect(b.release(await keyRequestFor(fresh.nonce))).resolves.toBeDefined();
  });

  it('attack: refused key requests spend no nonce, so junk cannot fill the spent set (decision 1731)', async () => {
    const b = new KeyBroker({ masterSecret: new Uint8Array(32).fill(1), policy, roots, maxUsedNonces: 1 });
    // A flood of requests, each with a genuine fresh nonce and evidence the broker refuses
    // (a measurement off the allow-list), against a spent set that holds one nonce.
    for (let i = 0; i < 5; i++)
      await expect(b.release(await keyRequestFor(b.issueNonce().nonce, OTHER_CODE))).rejects.toMatchObject({
        code: 'E_POLICY_REJECTED',
      });
    // A request whose quote binds another nonce than the one it carries is refused, and the
    // nonce it carried stays usable by the TD that really quoted it.
    const n = b.issueNonce().nonce;
    const junk = (await keyRequestFor(b.issueNonce().nonce)) as { evidence: { nonce: string } };
    junk.evidence.nonce = n;
    await expect(b.release(junk)).rejects.toMatchObject({ code: expect.stringMatching(/^E_EVIDENCE/) });
    const req = await keyRequestFor(n);
    await expect(b.release(req)).resolves.toBeDefined();
    // The release spent its nonce: a replay is refused.
    await expect(b.release(req)).rejects.toMatchObject({ code: 'E_EVIDENCE_NONCE' });
  });

  it('a nonce is reserved while its request is appraised: a concurrent copy is refused', async () => {
    const b = new KeyBroker({ masterSecret: new Uint8Array(32).fill(1), policy, roots });
    const req = await keyRequestFor(b.issueNonce().nonce);
    const results = await Promise.allSettled([b.release(req), b.release(req)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ code: 'E_EVIDENCE_NONCE' });
  });

  it('rate-limits each route per client: a nonce flood is 429, the same client still gets its key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-kms-rate-'));
    const d = new KmsDaemon({
      dataDir: dir,
      platform: kmsMachine,
      policy,
      roots,
      logger,
      limits: { noncesPerSecondPerIp: 3 },
    });
    daemons.push(d);
    const i = await d.start();
    const answers = await Promise.all(Array.from({ length: 8 }, () => post(i.url, '/v1/kms/nonce', {})));
    const limited = answers.filter((a) => a.status === 429);
    // 8 at once against 3 a second (a window boundary may fall inside the burst: at most 6 pass).
    expect(limited.length).toBeGreaterThanOrEqual(2);
    expect(limited[0]!.json.error.code).toBe('E_RATE_LIMITED');
    // The same client's key request goes through the key route's own budget.
    const n = d.broker!.issueNonce();
    const r = await post(i.url, '/v1/kms/key', await keyRequestFor(n.nonce));
    expect(r.status).toBe(200);
    expect(r.json.nonce).toBe(n.nonce);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the master secret is sealed: another machine or an altered file cannot open it', async () => {
    const blob = JSON.parse(readFileSync(join(dataDir, 'sealed-master.json'), 'utf8'));
    expect(Object.keys(blob).sort()).toEqual(['ct', 'iv', 'v']);
    await expect(startBroker(otherMachine)).rejects.toMatchObject({ code: 'E_SEAL' });
    const dir = mkdtempSync(join(tmpdir(), 'firn-kms-tamper-'));
    const ct: string = blob.ct;
    writeFileSync(
      join(dir, 'sealed-master.json'),
      JSON.stringify({ ...blob, ct: `${ct.slice(0, -2)}${ct.endsWith('00') ? '01' : '00'}` }),
    );
    await expect(startBroker(kmsMachine, dir)).rejects.toMatchObject({ code: 'E_SEAL' });
  });

  it('a broker without a measurement allow-list refuses to start', async () => {
    const d = new KmsDaemon({
      dataDir: mkdtempSync(join(tmpdir(), 'firn-kms-open-')),
      platform: kmsMachine,
      policy: DEV_POLICY,
      roots,
      logger,
    });
    await expect(d.start()).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
  });

  it('derives distinct keys per measurement, platform and TEE type', () => {
    const m = new Uint8Array(32).fill(1);
    const base = bytesToHex(deriveKmsSealingKey(m, 'tdx', GOOD_CODE, new Uint8Array(16)));
    expect(bytesToHex(deriveKmsSealingKey(m, 'tdx', OTHER_CODE, new Uint8Array(16)))).not.toBe(base);
    expect(bytesToHex(deriveKmsSealingKey(m, 'tdx', GOOD_CODE, new Uint8Array(16).fill(1)))).not.toBe(base);
    expect(bytesToHex(deriveKmsSealingKey(m, 'sgx', GOOD_CODE, new Uint8Array(16)))).not.toBe(base);
  });
});
