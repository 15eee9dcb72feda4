import { describe, expect, it } from 'vitest';
import { codeOf } from '../../test/codeOf.ts';
import { evaluateEvidence, PRODUCTION_POLICY } from '../policy/policy.ts';
import { makeSyntheticSgx, type SyntheticDcap } from '../../test/dcap/syntheticDcap.ts';
import { verifyDcapQuote } from './verifyDcapQuote.ts';

const run = (s: SyntheticDcap, now = s.now) =>
  verifyDcapQuote(s.quote, {
    collateral: s.collateral,
    now,
    roots: [new Uint8Array(Buffer.from(s.rootPem))],
  });

// Paths no real vector covers, under a locally generated test root (SGX here; synthetic TDX v4/v5
// quotes and their TD attribute rules are in tdx/tdAttributes.test.ts).
describe('synthetic DCAP chain (test root with SGX extensions)', () => {
  it('a well-formed synthetic quote verifies: UpToDate, not debug', async () => {
    const f = await run(await makeSyntheticSgx());
    expect(f.tcbStatus).toBe('UpToDate');
    expect(f.debug).toBe(false);
    expect(Buffer.from(f.platformId).toString('hex')).toBe('ab'.repeat(16));
  });
  it('a PCK certificate listed in the PCK CRL is revoked', async () => {
    expect(await codeOf(run(await makeSyntheticSgx({ revokePck: true })))).toBe('E_EVIDENCE_REVOKED');
  });
  it('a debug enclave verifies as debug and the default policy refuses it', async () => {
    const s = await makeSyntheticSgx({ attributesFlags: 0x07 });
    const f = await run(s);
    expect(f.debug).toBe(true);
    const v = evaluateEvidence(f, PRODUCTION_POLICY, { now: s.now });
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reasons.some((r) => /debug/.test(r.message))).toBe(true);
  });
  it('TCB level matching: the first level met wins, its advisories are reported; none met fails', async () => {
    const cpu = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
    const higher = cpu.map((v, i) => (i === 1 ? v + 1 : v));
    const s = await makeSyntheticSgx({
      tcbLevels: [
        { comps: higher, pcesvn: 13, status: 'UpToDate' },
        { comps: cpu, pcesvn: 13, status: 'SWHardeningNeeded', advisoryIDs: ['INTEL-SA-00001'] },
        { comps: cpu, pcesvn: 1, status: 'OutOfDate', advisoryIDs: ['INTEL-SA-00002'] },
      ],
    });
    const f = await run(s);
    expect(f.tcbStatus).toBe('SWHardeningNeeded');
    expect(f.advisoryIds).toEqual(['INTEL-SA-00001']);
    const none = await makeSyntheticSgx({ tcbLevels: [{ comps: higher, pcesvn: 13, status: 'UpToDate' }] });
    expect(await codeOf(run(none))).toBe('E_EVIDENCE_TCB');
  });
  it('an out-of-date QE makes an up-to-date platform OutOfDate and adds its advisories', async () => {
    const f = await run(await makeSyntheticSgx({ qeIsvSvn: 3 }));
    expect(f.tcbStatus).toBe('OutOfDate');
    expect(f.advisoryIds).toEqual(['INTEL-SA-00999']);
  });
  it('wrong FMSPC in the TCB info fails; the production root refuses the test chain', async () => {
    const s = await makeSyntheticSgx();
    const other = await makeSyntheticSgx({ tcbFmspc: '00906ED50000' });
    expect(await codeOf(run(other))).toBe('E_EVIDENCE_COLLATERAL');
    expect(await codeOf(verifyDcapQuote(s.quote, { collateral: s.collateral, now: s.now }))).toBe(
      'E_EVIDENCE_CHAIN',
    );
  });
  it('collateral not yet valid fails; past nextUpdate it is reported as expired', async () => {
    const s = await makeSyntheticSgx();
    expect(await codeOf(run(s, s.now - 7200))).toBe('E_EVIDENCE_EXPIRED');
    const late = await run(s, s.now + 40 * 86400);
    expect(late.extra.collateralExpired).toBe(true);
  });
});
