import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEV_POLICY, PRODUCTION_POLICY } from '@firn/attestation';
import { sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { loadPolicy } from './policyArgs.ts';

// `--policy` of the verifier daemon, train and infer: firn's JSON or Intel's appraisal-policy files.
describe('loadPolicy (--policy)', () => {
  it('names dev and production', () => {
    expect(loadPolicy('dev')).toBe(DEV_POLICY);
    expect(loadPolicy(undefined)).toBe(PRODUCTION_POLICY);
  });
  it("reads one of Intel's appraisal-policy files into the DCAP rules", () => {
    const p = loadPolicy(
      sharedPath(
        'vectors',
        'attestation',
        'intel-dcap-appraisal-policies',
        'sgx_platform_policy_platform_grace_period.json',
      ),
    );
    expect(p.dcap).toMatchObject({ teeType: 'sgx', platformClass: { platformGraceSeconds: 7776000 } });
    expect(p.acceptedTcbStatuses).toContain('OutOfDate');
    expect(p.gpu).toEqual(PRODUCTION_POLICY.gpu);
  });
  it("reads firn's JSON with tdx and gpu sections; a bad file is E_INVALID_INPUT", () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-policy-'));
    const f = join(dir, 'p.json');
    writeFileSync(f, JSON.stringify({ name: 'mine', tdx: { allowServiceTd: true } }));
    expect(loadPolicy(f)).toMatchObject({ name: 'mine', tdx: { allowServiceTd: true } });
    writeFileSync(f, '{"tdx": {"allowServiceTd": "yes"}}');
    expect(() => loadPolicy(f)).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }));
    expect(() => loadPolicy(join(dir, 'missing.json'))).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT' }),
    );
  });
});
