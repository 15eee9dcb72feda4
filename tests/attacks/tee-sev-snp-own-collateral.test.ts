import { randomBytes } from 'node:crypto';
import { bytesToHex, computeReportData } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { appraiseEvidence } from '../../packages/attestation/src/appraiseEvidence.ts';
import type { RegistrationClaim } from '../../packages/attestation/src/appraiseRegistration.ts';
import { PRODUCTION_POLICY } from '../../packages/attestation/src/policy/policy.ts';
import { createKdsClient } from '../../packages/attestation/src/sev-snp/kdsClient.ts';
import { combineSevSnpCollateral } from '../../packages/attestation/src/sev-snp/sevSnpCollateralSource.ts';
import { makeSyntheticSevSnp } from '../../packages/attestation/test/sev-snp/syntheticSevSnp.ts';
import {
  GUEST_KEYS,
  kdsServing,
  syntheticSevSnpGuest,
} from '../../packages/attestation/test/sev-snp/syntheticSevSnpGuest.ts';
import { kdsSourceFromArgs } from '../../packages/cli/src/commands/verifier.ts';
import { VerifierDaemon } from '../../packages/verifier/src/verifierDaemon.ts';

// A host whose chip's VCEK AMD has revoked, against a verifier that holds its own SEV-SNP
// collateral: offline files given to appraiseEvidence (`collateral`), or a KDS source
// (`sevSnpCollateral`, `firn verifier start --kds URL`). The host controls the bundle and the
// collateral it attaches (it may attach the genuine VCEK and chain, leave out the CRL, or attach
// another product's genuine-looking CRL); it does not hold AMD's keys. The verifier's own
// collateral must be authoritative (decision 1220): the revoked VCEK is refused whatever is attached.

const { enclaveAddress, kemPublicKey } = GUEST_KEYS;
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

async function revokedGuest() {
  const nonce = new Uint8Array(randomBytes(32));
  return { nonce, ...(await syntheticSevSnpGuest(nonce, { revokeVek: true })) };
}

const codes = (a: Awaited<ReturnType<typeof appraiseEvidence>>) => (a.ok ? [] : a.reasons.map((r) => r.code));

describe("attack: a host's attachment overrides the verifier's own SEV-SNP collateral", () => {
  it('offline collateral with the CRL: attaching the VCEK and chain without a CRL does not skip revocation', async () => {
    const { s, bundle, opts } = await revokedGuest();
    const own = { vek: s.vekPem, chain: s.chainPem, crl: b64(s.crlDer) };
    // Control: the verifier's own collateral alone refuses the revoked VCEK.
    expect(codes(await appraiseEvidence(bundle, { ...opts, collateral: own }))).toContain(
      'E_EVIDENCE_REVOKED',
    );
    // The attack: attach the genuine (revoked) VCEK and chain, no CRL.
    const attacked = await appraiseEvidence(
      { ...bundle, collateral: { vek: s.vekPem, chain: s.chainPem } },
      { ...opts, collateral: own },
    );
    expect(attacked.ok).toBe(false);
    expect(codes(attacked)).toContain('E_EVIDENCE_REVOKED');
  });

  it('an attached CRL that revokes nothing (same thisUpdate, another ARK) does not replace the own one', async () => {
    const { s, bundle, opts } = await revokedGuest();
    const clean = await makeSyntheticSevSnp(); // its CRL lists no serial, same thisUpdate
    const attacked = await appraiseEvidence(
      { ...bundle, collateral: { vek: s.vekPem, chain: s.chainPem, crl: b64(clean.crlDer) } },
      { ...opts, collateral: { vek: s.vekPem, chain: s.chainPem, crl: b64(s.crlDer) } },
    );
    expect(codes(attacked)).toContain('E_EVIDENCE_REVOKED');
  });

  it('an attached CRL claiming to be newer wins the date and is then refused by its signature', async () => {
    const { s, bundle, opts } = await revokedGuest();
    // A CRL that revokes nothing, dated after the verifier's own, signed by a key that is not AMD's.
    const forger = await makeSyntheticSevSnp({ crlThisUpdate: new Date('2025-05-01T00:00:00Z') });
    const attacked = await appraiseEvidence(
      { ...bundle, collateral: { vek: s.vekPem, chain: s.chainPem, crl: b64(forger.crlDer) } },
      { ...opts, collateral: { vek: s.vekPem, chain: s.chainPem, crl: b64(s.crlDer) } },
    );
    expect(attacked.ok).toBe(false);
    expect(codes(attacked)).not.toEqual([]);
    expect(codes(attacked)).toEqual([expect.stringMatching(/^E_EVIDENCE_(CHAIN|SIGNATURE|COLLATERAL)$/)]);
  });

  it("an attachment that does not parse is ignored where the verifier has its own; an attached CRL fills the own collateral's gap", async () => {
    const { s, bundle, opts } = await revokedGuest();
    const junk = await appraiseEvidence(
      { ...bundle, collateral: { vek: 'not a certificate', extra: 1 } },
      { ...opts, collateral: { vek: s.vekPem, chain: s.chainPem, crl: b64(s.crlDer) } },
    );
    expect(codes(junk)).toContain('E_EVIDENCE_REVOKED');
    const gapFilled = await appraiseEvidence(
      { ...bundle, collateral: { vek: s.vekPem, crl: b64(s.crlDer) } },
      { ...opts, collateral: { vek: s.vekPem, chain: s.chainPem } },
    );
    expect(codes(gapFilled)).toContain('E_EVIDENCE_REVOKED');
  });

  it('combineSevSnpCollateral: own VEK and chain always; an attached CRL only when current and later', async () => {
    const { s } = await revokedGuest();
    const clean = await makeSyntheticSevSnp();
    const own = { vek: s.vekPem, chain: s.chainPem, crl: b64(s.crlDer) };
    const attached = { vek: clean.vekPem, chain: clean.chainPem, crl: b64(clean.crlDer) };
    expect(combineSevSnpCollateral(own, attached, s.now)).toEqual(own);
    // Without an own CRL, a current attached one fills the gap; an expired one does not.
    expect(combineSevSnpCollateral({ vek: s.vekPem }, attached, s.now)).toEqual({
      vek: s.vekPem,
      chain: clean.chainPem,
      crl: attached.crl,
    });
    const afterNextUpdate = Date.parse('2026-06-02T00:00:00Z') / 1000;
    expect(combineSevSnpCollateral({ vek: s.vekPem }, attached, afterNextUpdate)).toEqual({
      vek: s.vekPem,
      chain: clean.chainPem,
    });
    // No own collateral: the attachment goes on unchanged (and is verified like any).
    expect(combineSevSnpCollateral(undefined, attached, s.now)).toBe(attached);
  });
});

describe('attack: the verifier daemon with --kds, a node attaching its revoked VCEK without the CRL', () => {
  it("the daemon's KDS CRL refuses the node; without the KDS the attachment alone passes the signature checks", async () => {
    const { s } = await revokedGuest();
    // Each fresh nonce gets a fresh synthetic guest (its own ARK, pinned below in place of AMD's);
    // the KDS serves that guest's VCEK, chain and CRL (which revokes the VCEK).
    let guest: Awaited<ReturnType<typeof makeSyntheticSevSnp>> | undefined;
    const roots: { 'sev-snp'?: Uint8Array[] } = {};
    const kds = createKdsClient({
      baseUrl: 'https://kds.test',
      retries: 0,
      fetch: (async (input: string | URL | Request) =>
        kdsServing(guest!.vekDer, guest!.chainPem, guest!.crlDer)(input)) as typeof fetch,
    });
    const daemonWith = (sevSnpCollateral?: typeof kds) =>
      new VerifierDaemon({
        rpcUrl: 'http://127.0.0.1:1',
        verifierKey: bytesToHex(randomBytes(32)),
        deployment: {
          chainId: 31337,
          registry: '0x0000000000000000000000000000000000000001',
          verifierSet: '0x0000000000000000000000000000000000000002',
          jobMarket: '0x0000000000000000000000000000000000000003',
          dataLedger: '0x0000000000000000000000000000000000000004',
          deployBlock: 0n,
        },
        policy: PRODUCTION_POLICY,
        logger: { info() {}, warn() {}, error() {} },
        now: () => s.now,
        roots,
        ...(sevSnpCollateral === undefined ? {} : { sevSnpCollateral }),
        fetchEvidence: async (_endpoint, nonce) => {
          const reportData = computeReportData({ enclaveAddress, kemPublicKey, nonce });
          guest = await makeSyntheticSevSnp({ revokeVek: true, reportData });
          roots['sev-snp'] = [new Uint8Array(Buffer.from(guest.arkPem))];
          return {
            version: 1,
            teeType: 'sev-snp',
            quote: bytesToHex(guest.report),
            nonce: bytesToHex(nonce),
            enclaveAddress: bytesToHex(enclaveAddress),
            kemPublicKey: bytesToHex(kemPublicKey),
            // The attack: the genuine (revoked) VCEK and chain, and no CRL.
            collateral: { vek: guest.vekPem, chain: guest.chainPem },
          };
        },
      });
    const claim: RegistrationClaim = {
      enclaveId: `0x${'11'.repeat(32)}`,
      teeType: 'sev-snp' as const,
      measurement: `0x${'22'.repeat(32)}` as const,
      enclaveAddress: bytesToHex(enclaveAddress),
      kemPublicKey: bytesToHex(kemPublicKey),
      endpoint: 'http://node.test',
      operator: `0x${'55'.repeat(20)}`,
    };
    // Control: a daemon without a KDS sees only the attachment, so it cannot check revocation; the
    // production policy then refuses the evidence for the missing CRL (decision 1765), not as revoked.
    const blind = await daemonWith().appraise(claim);
    expect(blind.approve).toBe(false);
    const blindCodes = blind.approve ? [] : blind.reasons.map((r) => r.code);
    expect(blindCodes).not.toContain('E_EVIDENCE_REVOKED');
    expect(blindCodes).toContain('E_EVIDENCE_COLLATERAL');
    // With --kds the daemon's own CRL is used whatever the node attaches.
    const verdict = await daemonWith(kds).appraise(claim);
    expect(verdict.approve).toBe(false);
    expect(verdict.approve ? [] : verdict.reasons.map((r) => r.code)).toContain('E_EVIDENCE_REVOKED');
  });
});

describe('firn verifier start --kds URL --kds-cache DIR', () => {
  it('builds a KDS source for the daemon; refuses a non-http URL and a cache without a URL', () => {
    const k = kdsSourceFromArgs({ kds: 'https://kds.mirror.test', kdsCache: '/tmp/firn-kds-cache-test' });
    expect(k?.baseUrl).toContain('kds.mirror.test');
    expect(kdsSourceFromArgs({})).toBeUndefined();
    expect(() => kdsSourceFromArgs({ kds: 'ftp://kds.test' })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT' }),
    );
    expect(() => kdsSourceFromArgs({ kdsCache: '/tmp/x' })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT', message: expect.stringContaining('--kds') }),
    );
  });
});
