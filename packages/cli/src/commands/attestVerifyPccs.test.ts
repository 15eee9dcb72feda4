import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type LocalPcs, PCS_VECTORS, startLocalPcs } from '../../../attestation/test/collateral/localPcs.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAttestVerify } from './attestVerify.ts';

// `firn attest verify --quote Q --pccs URL --at T --json` against a local PCS-compatible server that
// serves real recorded Intel responses (packages/attestation/vectors/pcs), for real SGX v3 and TDX v4
// quotes that are not in the shared vectors. Not covered: Intel's live PCS and TLS.
// One service per recording date (each snapshot has its own PCK CRL).
let pcs: LocalPcs;
let tdxPcs: LocalPcs;
beforeAll(async () => {
  pcs = await startLocalPcs({ dirs: [PCS_VECTORS.sgx.dir] });
  tdxPcs = await startLocalPcs({ dirs: [PCS_VECTORS.tdx.dir] });
});
afterAll(async () => {
  await pcs.close();
  await tdxPcs.close();
});
const service = (name: 'sgx' | 'tdx') => (name === 'sgx' ? pcs : tdxPcs);
const out = (r: { output: string }) => JSON.parse(r.output) as Record<string, unknown>;
const quote = (d: string) => join(d, 'quote.dat');

describe('firn attest verify --pccs', () => {
  for (const [name, teeType, version] of [
    ['sgx', 'sgx', 3],
    ['tdx', 'tdx', 4],
  ] as const) {
    const v = PCS_VECTORS[name];
    it(`${name}: fetches what it needs and prints Intel's status and advisories; refuses after nextUpdate`, async () => {
      const r = await runAttestVerify({ quote: quote(v.dir), pccs: service(name).url, at: v.now });
      expect(r.exitCode).toBe(0);
      expect(out(r)).toMatchObject({
        teeType,
        quoteVersion: version,
        status: v.status,
        advisoryIds: v.advisoryIds,
        collateral: { nextUpdate: new Date(v.nextUpdate * 1000).toISOString() },
      });
      const late = await runAttestVerify({
        quote: quote(v.dir),
        pccs: service(name).url,
        at: v.nextUpdate + 1,
      });
      expect(late.exitCode).toBe(1);
      expect(out(late)).toMatchObject({
        error: { code: 'E_EVIDENCE_EXPIRED' },
        status: v.status,
        advisoryIds: v.advisoryIds,
      });
    });
  }

  it('a collateral file with --pccs: its current pieces are used (and verified), expired ones fetched', async () => {
    const v = PCS_VECTORS.sgx;
    const dir = mkdtempSync(join(tmpdir(), 'firn-pccs-cli-'));
    // A file whose TCB info is edited (so it cannot verify) but current: it is kept, and refused.
    const { pcsCollateralSource, quoteCollateralToJson } = await import('@firn/attestation');
    const { readFileSync } = await import('node:fs');
    const c = quoteCollateralToJson(
      await pcsCollateralSource({ baseUrl: pcs.url }).collateralFor(readFileSync(quote(v.dir)), v.now),
    );
    const forged = join(dir, 'forged.json');
    const edited = c.tcb_info!.replace('"tcbEvaluationDataNumber":17', '"tcbEvaluationDataNumber":18');
    expect(edited).not.toBe(c.tcb_info);
    writeFileSync(forged, JSON.stringify({ ...c, tcb_info: edited }));
    const r = await runAttestVerify({ quote: quote(v.dir), collateral: forged, pccs: pcs.url, at: v.now });
    expect(r.exitCode).toBe(1);
    expect(out(r)).toMatchObject({ error: { code: 'E_EVIDENCE_COLLATERAL' } });
    // Past the file's TCB info nextUpdate (an hour after the collateral's earliest one) the edited
    // piece is dropped and fetched again: the verdict is the service's (expired by then).
    const late = await runAttestVerify({
      quote: quote(v.dir),
      collateral: forged,
      pccs: pcs.url,
      at: v.nextUpdate + 3600,
    });
    expect(out(late)).toMatchObject({ error: { code: 'E_EVIDENCE_EXPIRED' }, status: v.status });
    // Neither a file nor a service: the user is told what to give.
    const none = await runAttestVerify({ quote: quote(v.dir), at: v.now });
    expect(out(none)).toMatchObject({ error: { code: 'E_INVALID_INPUT' } });
  });

  it('an unreachable PCCS is E_UNAVAILABLE naming the URL', async () => {
    const r = await runAttestVerify({
      quote: quote(PCS_VECTORS.sgx.dir),
      pccs: 'http://127.0.0.1:9',
      at: 1755236700,
    });
    expect(r.exitCode).toBe(1);
    const e = out(r).error as { code: string; message: string };
    expect(e.code).toBe('E_UNAVAILABLE');
    expect(e.message).toContain('http://127.0.0.1:9/');
  });

  it('the firn binary: firn attest verify --quote Q --pccs URL --at T --json', async () => {
    const bin = fileURLToPath(new URL('../../bin/firn.mjs', import.meta.url));
    const v = PCS_VECTORS.tdx;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        bin,
        'attest',
        'verify',
        '--quote',
        quote(v.dir),
        '--pccs',
        tdxPcs.url,
        '--at',
        String(v.now),
        '--json',
      ],
      { timeout: 30_000 },
    );
    expect(JSON.parse(stdout)).toMatchObject({ status: v.status, advisoryIds: v.advisoryIds });
  }, 40_000);
});
