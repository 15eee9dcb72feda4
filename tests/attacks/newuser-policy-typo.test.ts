import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAttestationPolicy } from '@firn/attestation';
import { FirnError, repoRoot } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { demoModel } from '../../packages/cli/src/devnet/demo/inferenceDemo.ts';

// A careless user writes their own policy file and mistypes a key: `rejectedAdvisoryIDs` for
// `rejectedAdvisoryIds`, `measurementAllowlist` for `measurementAllowList`. The nested sections
// (tdx, gpu, nitro, ...) refuse unknown keys, but the top level ignored them: the policy ran
// without the rule the user wrote, silently (here: advisories they meant to refuse were
// accepted). Promised: a file's content mistake is refused with exit 3 naming it, before
// anything is sent.
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
const dir = mkdtempSync(join(tmpdir(), 'firn-atk-policy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('attack: a policy file with a mistyped key', () => {
  it('loadAttestationPolicy refuses an unknown top-level key, naming it', () => {
    for (const key of ['rejectedAdvisoryIDs', 'measurementAllowlist', 'allowSimulted']) {
      let e: unknown;
      try {
        loadAttestationPolicy({ acceptedTcbStatuses: ['UpToDate'], [key]: ['INTEL-SA-00837'] }, 'mine');
      } catch (x) {
        e = x;
      }
      expect(e, key).toBeInstanceOf(FirnError);
      expect((e as FirnError).code).toBe('E_INVALID_INPUT');
      expect((e as FirnError).message).toContain(key);
    }
  });

  it('firn infer --policy with a mistyped key exits 3 naming the key, before the RPC', () => {
    const a = (n: number) => `0x${n.toString(16).padStart(40, '0')}`;
    writeFileSync(
      join(dir, 'state.json'),
      JSON.stringify({
        rpcUrl: 'http://127.0.0.1:1',
        chainId: 31337,
        contracts: { registry: a(1), verifierSet: a(2), jobMarket: a(3), dataLedger: a(4) },
        accounts: { requester: { privateKey: `0x${'5a'.repeat(32)}` } }, // a made-up test key
      }),
    );
    writeFileSync(join(dir, 'model.onnx'), demoModel());
    writeFileSync(
      join(dir, 'input.json'),
      JSON.stringify({ features: { dims: [1, 4], type: 'float32', data: [1, 2, 3, 4] } }),
    );
    writeFileSync(join(dir, 'policy.json'), JSON.stringify({ rejectedAdvisoryIDs: ['INTEL-SA-00837'] }));
    const r = spawnSync(
      process.execPath,
      [
        FIRN,
        'infer',
        '--devnet',
        'state.json',
        '--model',
        'model.onnx',
        '--input',
        'input.json',
        '--out',
        'o.json',
        '--policy',
        'policy.json',
      ],
      { cwd: dir, encoding: 'utf8', timeout: 50_000, env: { ...process.env, FIRN_HOME: join(dir, 'home') } },
    );
    expect(r.stderr).toContain('rejectedAdvisoryIDs');
    expect(r.status).toBe(3);
  }, 60_000);
});
