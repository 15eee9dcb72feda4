import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { appraiseEvidence } from '../../packages/attestation/src/appraiseEvidence.ts';
import { syntheticSevSnpGuest } from '../../packages/attestation/test/sev-snp/syntheticSevSnpGuest.ts';

// A malicious host running an SEV-SNP guest on firmware it never updated (every SPL 0: the
// bootloader, PSP OS, SNP firmware and microcode of the first SNP release, before every AMD
// security bulletin since). AMD's KDS issues a VCEK for any TCB a chip reports, so the VCEK chain
// verifies. The production policy must still refuse a platform whose TCB is out of date, as it
// does for Intel (acceptedTcbStatuses: UpToDate, SWHardeningNeeded): today every VCEK-certified
// TCB is reported as 'UpToDate' and the production policy has no SEV-SNP minimum TCB.
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const ANCIENT = { bootloader: 0, tee: 0, snp: 0, microcode: 0 };

describe('attack: an SEV-SNP platform on its first firmware passes the production policy', () => {
  it('a report whose REPORTED_TCB is all zeros (VCEK for that TCB, CRL attached) is refused by production', async () => {
    const nonce = new Uint8Array(randomBytes(32));
    const { s, bundle, opts } = await syntheticSevSnpGuest(nonce, { tcb: ANCIENT });
    const a = await appraiseEvidence(
      { ...bundle, collateral: { vek: s.vekPem, chain: s.chainPem, crl: b64(s.crlDer) } },
      opts,
    );
    // Today: approved, with facts.tcbStatus 'UpToDate' for a TCB of all zero SPLs.
    expect(a.ok, `approved with TCB status ${a.facts?.tcbStatus}`).toBe(false);
  });
});
