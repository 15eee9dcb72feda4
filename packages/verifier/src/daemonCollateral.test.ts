import { randomBytes } from 'node:crypto';
import {
  ATTACHED_ONLY_COLLATERAL,
  type CollateralSource,
  PRODUCTION_POLICY,
  pcsCollateralSource,
  type RegistrationClaim,
} from '@firn/attestation';
import { bytesToHex, type EvidenceBundle } from '@firn/core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachCollateral, createLogger, NodeDaemon } from '@firn/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type LocalPcs,
  PCS_VECTORS,
  startLocalPcs,
  vectorQuote,
} from '../../attestation/test/collateral/localPcs.ts';
import { makeSyntheticSgx } from '../../attestation/test/dcap/syntheticDcap.ts';
import { ownServiceUnavailable, VerifierDaemon } from './verifierDaemon.ts';

// The verifier daemon's appraisal path (what a vote runs) on REAL SGX and TDX quotes that are not
// in the shared vectors, with collateral from a local PCS-compatible server serving recorded Intel
// responses. A real quote cannot bind a verifier's fresh nonce and keys, so every verdict here is
// at best "report data does not bind": what the test shows is that the quote, its collateral and
// the policy were evaluated (Intel's status reaches the verdict) instead of E_EVIDENCE_COLLATERAL.
// Not covered: chain votes (the e2e devnet test covers them on the simulated TEE).
let sgxPcs: LocalPcs;
let tdxPcs: LocalPcs;
beforeAll(async () => {
  sgxPcs = await startLocalPcs({ dirs: [PCS_VECTORS.sgx.dir] });
  tdxPcs = await startLocalPcs({ dirs: [PCS_VECTORS.tdx.dir] });
});
afterAll(async () => {
  await sgxPcs.close();
  await tdxPcs.close();
});

const logger = { info() {}, warn() {}, error() {} };
const deployment = {
  chainId: 31337,
  registry: '0x0000000000000000000000000000000000000001',
  verifierSet: '0x0000000000000000000000000000000000000002',
  jobMarket: '0x0000000000000000000000000000000000000003',
  dataLedger: '0x0000000000000000000000000000000000000004',
  deployBlock: 0n,
} as const;

/** A real quote relayed by a node for whatever nonce it is asked (the binding cannot match). */
function bundleFor(dir: string, teeType: 'sgx' | 'tdx', nonce: Uint8Array): EvidenceBundle {
  return {
    version: 1,
    teeType,
    quote: bytesToHex(vectorQuote(dir)),
    nonce: bytesToHex(nonce),
    enclaveAddress: bytesToHex(new Uint8Array(20).fill(7)),
    kemPublicKey: bytesToHex(new Uint8Array(32).fill(9)),
  };
}

function daemon(
  now: number,
  source: CollateralSource | undefined,
  evidence: (n: Uint8Array) => Promise<unknown>,
) {
  return new VerifierDaemon({
    rpcUrl: 'http://127.0.0.1:1',
    verifierKey: bytesToHex(randomBytes(32)),
    deployment,
    policy: PRODUCTION_POLICY,
    logger,
    now: () => now,
    ...(source === undefined ? {} : { collateralSource: source }),
    fetchEvidence: (_endpoint, nonce) => evidence(nonce),
  });
}

const claim = (teeType: 'sgx' | 'tdx'): RegistrationClaim => ({
  enclaveId: `0x${'11'.repeat(32)}`,
  teeType,
  measurement: `0x${'22'.repeat(32)}`,
  enclaveAddress: bytesToHex(new Uint8Array(20).fill(7)),
  kemPublicKey: bytesToHex(new Uint8Array(32).fill(9)),
  endpoint: 'http://node.invalid',
  operator: `0x${'55'.repeat(20)}`,
});

describe('verifier daemon with a PCCS URL', () => {
  it('SGX: without a source the real quote is refused for lack of collateral; with one, only the binding fails', async () => {
    const v = PCS_VECTORS.sgx;
    const evidence = async (n: Uint8Array) => bundleFor(v.dir, 'sgx', n);
    const without = await daemon(v.now, undefined, evidence).appraise(claim('sgx'));
    expect(!without.approve && without.reasons.map((r) => r.code)).toEqual(['E_EVIDENCE_COLLATERAL']);
    const src = pcsCollateralSource({ baseUrl: sgxPcs.url, minRetryDelayMs: 1 });
    const withSource = await daemon(v.now, src, evidence).appraise(claim('sgx'));
    // SWHardeningNeeded is accepted by the production policy: the binding is all that is left.
    expect(!withSource.approve && withSource.reasons.map((r) => r.code)).toEqual(['E_EVIDENCE_BINDING']);
  });

  it("TDX: Intel's status (OutOfDate) reaches the verdict, and after nextUpdate the collateral is refused", async () => {
    const v = PCS_VECTORS.tdx;
    const evidence = async (n: Uint8Array) => bundleFor(v.dir, 'tdx', n);
    const src = pcsCollateralSource({ baseUrl: tdxPcs.url, minRetryDelayMs: 1 });
    const r = await daemon(v.now, src, evidence).appraise(claim('tdx'));
    expect(!r.approve && r.reasons).toEqual([
      { code: 'E_EVIDENCE_TCB', message: 'TCB status OutOfDate is not accepted by policy production' },
      expect.objectContaining({ code: 'E_EVIDENCE_BINDING' }),
    ]);
    const late = await daemon(v.nextUpdate + 1, src, evidence).appraise(claim('tdx'));
    expect(!late.approve && late.reasons.map((x) => x.code)).toContain('E_EVIDENCE_EXPIRED');
  });

  it('the node attaches collateral; the daemon still asks its own source once (none while its cache is current), and a forged attachment is refused', async () => {
    const v = PCS_VECTORS.sgx;
    const nodeSource = pcsCollateralSource({ baseUrl: sgxPcs.url, minRetryDelayMs: 1 });
    const attached = await attachCollateral(bundleFor(v.dir, 'sgx', new Uint8Array(32)), nodeSource, v.now);
    expect(attached.collateral).toMatchObject({
      tcb_info: expect.stringContaining('"fmspc":"00606a000000"'),
    });
    sgxPcs.hits.length = 0;
    const relay = async (n: Uint8Array) => ({ ...attached, nonce: bytesToHex(n) });
    // The verifier's own source: every piece is its own (decision 0940: an older attached CRL
    // must not win; decision 1792: nor an older, still current TCB info or QE identity).
    const own = pcsCollateralSource({ baseUrl: sgxPcs.url, retries: 0 });
    const first = await daemon(v.now, own, relay).appraise(claim('sgx'));
    expect(!first.approve && first.reasons.map((x) => x.code)).toEqual(['E_EVIDENCE_BINDING']);
    expect(sgxPcs.hits.map((h) => h.split('?')[0]).sort()).toEqual([
      '/sgx/certification/v4/pckcrl',
      '/sgx/certification/v4/qe/identity',
      '/sgx/certification/v4/rootcacrl',
      '/sgx/certification/v4/tcb',
    ]);
    sgxPcs.hits.length = 0;
    // Then the verifier's PCCS is down (every request 503): its cache and the attachment suffice.
    sgxPcs.forceStatus = 503;
    try {
      const down = own;
      const r = await daemon(v.now, down, relay).appraise(claim('sgx'));
      expect(!r.approve && r.reasons.map((x) => x.code)).toEqual(['E_EVIDENCE_BINDING']);
      expect(sgxPcs.hits).toEqual([]);
      // A verifier with a cold cache and its PCCS down has no CRL of its own: no verdict.
      const cold = pcsCollateralSource({ baseUrl: sgxPcs.url, retries: 0 });
      const c0 = await daemon(v.now, cold, relay).appraise(claim('sgx'));
      expect(!c0.approve && c0.reasons.map((x) => x.code)).toContain('E_UNAVAILABLE');
      const onlyAttached = await daemon(v.now, ATTACHED_ONLY_COLLATERAL, relay).appraise(claim('sgx'));
      expect(!onlyAttached.approve && onlyAttached.reasons.map((x) => x.code)).toEqual([
        'E_EVIDENCE_BINDING',
      ]);
      // Attack: the host edits the attached QE identity to claim it is newer; it wins the date and
      // is refused by its signature.
      const c = attached.collateral as Record<string, string>;
      const forgedQe = c.qe_identity!.replace('"tcbEvaluationDataNumber":17', '"tcbEvaluationDataNumber":99');
      expect(forgedQe).not.toBe(c.qe_identity);
      const forged = async (n: Uint8Array) => ({
        ...attached,
        nonce: bytesToHex(n),
        collateral: { ...c, qe_identity: forgedQe },
      });
      const f = await daemon(v.now, down, forged).appraise(claim('sgx'));
      expect(!f.approve && f.reasons).toEqual([
        { code: 'E_EVIDENCE_COLLATERAL', message: 'QE identity signature is invalid' },
      ]);
    } finally {
      sgxPcs.forceStatus = undefined;
    }
  });

  it('the node leaves simulated evidence alone, and its bundle unchanged when the service is down', async () => {
    const nonce = new Uint8Array(32).fill(1);
    const sim: EvidenceBundle = { ...bundleFor(PCS_VECTORS.sgx.dir, 'sgx', nonce), teeType: 'simulated' };
    const src = pcsCollateralSource({ baseUrl: 'http://127.0.0.1:9', retries: 0 });
    expect(await attachCollateral(sim, src, PCS_VECTORS.sgx.now)).toBe(sim);
    const sgx = bundleFor(PCS_VECTORS.sgx.dir, 'sgx', nonce);
    const warned: string[] = [];
    const log = { warn: (m: string) => void warned.push(m) };
    expect(await attachCollateral(sgx, src, PCS_VECTORS.sgx.now, log)).toBe(sgx);
    expect(warned).toEqual(['could not attach collateral; verifiers will fetch it']);
  });

  it('NodeDaemon.attest attaches collateral from its source to what the enclave returns', async () => {
    const v = PCS_VECTORS.tdx;
    const node = new NodeDaemon({
      dataDir: mkdtempSync(join(tmpdir(), 'firn-node-col-')),
      bundlePath: '/nonexistent/enclave.mjs',
      enclaveEnv: {},
      logger: createLogger({ component: 'node' }, { level: 'error', write: () => {} }),
      collateralSource: pcsCollateralSource({ baseUrl: tdxPcs.url, minRetryDelayMs: 1 }),
    });
    // Stand-in for the enclave process: it relays the real TDX quote for the nonce asked.
    (node.supervisor as unknown as { call: (m: string, p: { nonce: string }) => Promise<unknown> }).call =
      async (_m, p) => bundleFor(v.dir, 'tdx', Buffer.from(p.nonce.slice(2), 'hex'));
    const nonce = new Uint8Array(32).fill(5);
    const b = await node.attest(nonce);
    expect(b.collateral).toMatchObject({ tcb_info: expect.stringContaining('"fmspc":"00806f050000"') });
    // A verifier whose own service is down verifies it from the attachment alone (wall clock is
    // after this collateral's nextUpdate, so the verifier's time is pinned to the vector's).
    const r = await daemon(v.now, ATTACHED_ONLY_COLLATERAL, async (n) => ({
      ...b,
      nonce: bytesToHex(n),
    })).appraise(claim('tdx'));
    expect(!r.approve && r.reasons.map((x) => x.code)).toEqual(['E_EVIDENCE_TCB', 'E_EVIDENCE_BINDING']);
  });

  it("the verifier's own PCCS down is no verdict on the node: the daemon abstains", async () => {
    const v = PCS_VECTORS.sgx;
    const evidence = async (n: Uint8Array) => bundleFor(v.dir, 'sgx', n);
    const down = pcsCollateralSource({ baseUrl: 'http://127.0.0.1:9', retries: 0 });
    const r = await daemon(v.now, down, evidence).appraise(claim('sgx'));
    expect(!r.approve && r.reasons.map((x) => x.code)).toEqual(['E_UNAVAILABLE']);
    expect(ownServiceUnavailable(r)).toBe(true);
    // A node's own faults stay refusals.
    const up = pcsCollateralSource({ baseUrl: sgxPcs.url, minRetryDelayMs: 1 });
    expect(ownServiceUnavailable(await daemon(v.now, up, evidence).appraise(claim('sgx')))).toBe(false);
  });

  it('a quote whose self-made PCK leaf names an FMSPC the PCS does not know (404) is refused, not abstained on, and the PCS is asked once (decision 1834)', async () => {
    const forged = await makeSyntheticSgx({ fmspc: 'DEADBEEF0000' });
    const col = forged.collateral as Record<string, string>;
    const asked: string[] = [];
    // The verifier's PCS: up, answering every piece the quote does not choose; it knows no such FMSPC.
    const pcs = (async (input: string | URL | Request) => {
      const url = new URL(String(input));
      asked.push(url.pathname + url.search);
      const enc = encodeURIComponent;
      if (url.pathname.endsWith('/pckcrl'))
        return new Response(Buffer.from(col.pck_crl!, 'hex'), {
          headers: { 'SGX-PCK-CRL-Issuer-Chain': enc(col.pck_crl_issuer_chain!) },
        });
      if (url.pathname.endsWith('/rootcacrl')) return new Response(col.root_ca_crl!);
      if (url.pathname.endsWith('/qe/identity'))
        return new Response(
          `{"enclaveIdentity":${col.qe_identity},"signature":"${col.qe_identity_signature}"}`,
          {
            headers: { 'SGX-Enclave-Identity-Issuer-Chain': enc(col.qe_identity_issuer_chain!) },
          },
        );
      return new Response('{"error":"no such FMSPC"}', { status: 404 });
    }) as typeof fetch;
    const src = pcsCollateralSource({ baseUrl: 'https://pccs.test', fetch: pcs, retries: 0 });
    const evidence = async (n: Uint8Array) => ({
      version: 1,
      teeType: 'sgx',
      quote: bytesToHex(forged.quote),
      nonce: bytesToHex(n),
      enclaveAddress: bytesToHex(new Uint8Array(20).fill(7)),
      kemPublicKey: bytesToHex(new Uint8Array(32).fill(9)),
    });
    const d = daemon(forged.now, src, evidence);
    for (let i = 0; i < 3; i++) {
      const r = await d.appraise(claim('sgx'));
      expect(!r.approve && r.reasons.map((x) => x.code)).toEqual(['E_EVIDENCE_COLLATERAL']);
      expect(ownServiceUnavailable(r)).toBe(false);
    }
    expect(asked.filter((a) => a.includes('fmspc=DEADBEEF0000'))).toHaveLength(1);
  });
});
