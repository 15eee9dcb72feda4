import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { runAttestVerifySevSnp } from './attestVerifySevSnp.ts';

// The command core on the committed real SEV-SNP vectors (see their SOURCE.md).
const V = (...p: string[]) => join(repoRoot(), 'packages', 'attestation', 'vectors', 'sev-snp', ...p);
const GCP = {
  report: V('gcp-milan-v5', 'report.bin'),
  vcek: V('gcp-milan-v5', 'vcek.pem'),
  chain: V('gcp-milan-v5', 'cert_chain.pem'),
  at: 1767225600,
};
const VCEK_NOT_AFTER = Date.parse('2032-12-05T06:04:27Z') / 1000;
const tmp = mkdtempSync(join(tmpdir(), 'firn-cli-snp-'));

describe('firn attest verify --tee sev-snp', () => {
  it('accepts the real GCP report with its VCEK and chain, printing its facts', async () => {
    const r = await runAttestVerifySevSnp(GCP);
    expect(r.exitCode).toBe(0);
    const o = JSON.parse(r.output);
    expect(o).toMatchObject({
      teeType: 'sev-snp',
      product: 'Milan',
      reportVersion: 5,
      debug: false,
      vmpl: 0,
    });
    expect(o.measurement).toMatch(/^b747d554/);
    expect(o.chipId).toMatch(/^980cf7b6/);
    expect(o.reportedTcb).toMatchObject({ bootloader: 4, snp: 27, microcode: 222 });
  });

  it('accepts a hex report and a DER VCEK without a chain (pinned ASK)', async () => {
    const hex = join(tmp, 'report.hex');
    writeFileSync(hex, readFileSync(GCP.report).toString('hex'));
    const r = await runAttestVerifySevSnp({ report: hex, vcek: GCP.vcek, at: GCP.at });
    expect(r.exitCode).toBe(0);
  });

  it('refuses one hour after the VCEK expires, a flipped byte, another root, and the debug guest', async () => {
    const expired = await runAttestVerifySevSnp({ ...GCP, at: VCEK_NOT_AFTER + 3600 });
    expect(expired.exitCode).toBe(1);
    expect(JSON.parse(expired.output).error.code).toBe('E_EVIDENCE_EXPIRED');

    const flipped = join(tmp, 'flipped.bin');
    const b = readFileSync(GCP.report);
    b[0x90]! ^= 1;
    writeFileSync(flipped, b);
    const f = await runAttestVerifySevSnp({ ...GCP, report: flipped });
    expect(JSON.parse(f.output).error.code).toBe('E_EVIDENCE_SIGNATURE');

    const genoaArk = join(tmp, 'genoa-ark.pem');
    const pems = readFileSync(V('amd-kds', 'genoa', 'cert_chain.pem'), 'latin1').match(
      /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g,
    )!;
    writeFileSync(genoaArk, pems[1]!);
    const w = await runAttestVerifySevSnp({ ...GCP, root: genoaArk });
    expect(JSON.parse(w.output).error.code).toBe('E_EVIDENCE_CHAIN');

    const d = await runAttestVerifySevSnp({
      report: V('go-sev-guest-milan-v2', 'report.bin'),
      vcek: V('go-sev-guest-milan-v2', 'vcek.der'),
      at: 1704067200,
    });
    expect(d.exitCode).toBe(1);
    const o = JSON.parse(d.output);
    expect(o.error.code).toBe('E_POLICY_REJECTED');
    expect(o.facts.debug).toBe(true);
  });

  it('accepts a VCEK file with its chain appended, and the KDS chain file as --root', async () => {
    const both = join(tmp, 'vcek-and-chain.pem');
    writeFileSync(both, readFileSync(GCP.vcek, 'latin1') + readFileSync(GCP.chain, 'latin1'));
    expect((await runAttestVerifySevSnp({ report: GCP.report, vcek: both, at: GCP.at })).exitCode).toBe(0);
    expect((await runAttestVerifySevSnp({ ...GCP, root: GCP.chain })).exitCode).toBe(0);
    // Another product's whole chain as the root: refused.
    const r = await runAttestVerifySevSnp({ ...GCP, root: V('amd-kds', 'turin', 'cert_chain.pem') });
    expect(JSON.parse(r.output).error.code).toBe('E_EVIDENCE_CHAIN');
  });

  it('a policy file can refuse SMT; bad inputs give typed errors', async () => {
    const policy = join(tmp, 'policy.json');
    writeFileSync(policy, JSON.stringify({ name: 'no-smt', sevSnp: { allowSmt: false } }));
    expect(JSON.parse((await runAttestVerifySevSnp({ ...GCP, policy })).output).error.code).toBe(
      'E_POLICY_REJECTED',
    );
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, JSON.stringify({ sevSnp: { allowSmt: 'yes' } }));
    expect(JSON.parse((await runAttestVerifySevSnp({ ...GCP, policy: bad })).output).error.code).toBe(
      'E_INVALID_INPUT',
    );
    expect(JSON.parse((await runAttestVerifySevSnp({ ...GCP, at: 'soon' })).output).error.code).toBe(
      'E_INVALID_INPUT',
    );
    expect(
      JSON.parse((await runAttestVerifySevSnp({ report: GCP.report, at: GCP.at })).output).error.code,
    ).toBe('E_INVALID_INPUT');
    expect(
      JSON.parse((await runAttestVerifySevSnp({ ...GCP, vcek: join(tmp, 'none') })).output).error.code,
    ).toBe('E_NOT_FOUND');
  });
});

describe('firn attest verify --tee sev-snp|nitro: a missing file is a mistake in the command', () => {
  it('exits 3 naming the path (README: 3 fixes the command), not the "did not verify" 1', async () => {
    const missing = join(tmp, 'no-such-report.bin');
    const snp = await runAttestVerifySevSnp({ report: missing, vcek: GCP.vcek, at: GCP.at });
    expect({ code: snp.exitCode, output: snp.output }).toMatchObject({ code: 3 });
    expect(snp.output).toContain(missing);
    const { runAttestVerifyNitro } = await import('./attestVerifyNitro.ts');
    const nitro = await runAttestVerifyNitro({ evidence: missing, at: String(GCP.at) });
    expect(nitro.exitCode).toBe(3);
    expect(nitro.output).toContain(missing);
    // Malformed evidence is still "did not verify" (1), not a command mistake.
    const junk = join(tmp, 'junk.bin');
    writeFileSync(junk, Buffer.alloc(64));
    expect((await runAttestVerifyNitro({ evidence: junk, at: String(GCP.at) })).exitCode).toBe(1);
  });
});
