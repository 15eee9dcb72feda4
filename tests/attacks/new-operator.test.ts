import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AnvilInstance,
  createFirnClients,
  type FirnDeployment,
  isVerifier,
  startAnvil,
} from '@firn/chain';
import { sharedPath } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployForCli } from '../../packages/cli/test/cliDeployment.ts';
import { expectUsefulError, runFirn } from '../helpers/firnCli.ts';

// A careless new operator / governor / verifier following the README and --help of the newer
// commands (gov, rewards, attest verify-gpu). Every mistake must be named (never a bare
// E_INTERNAL), and no governance command may report success for an action that changed nothing.
const dir = mkdtempSync(join(tmpdir(), 'firn-new-operator-'));
let anvil: AnvilInstance;
let deployment: FirnDeployment;
let deploymentFile: string;

const firn = (...args: string[]) => runFirn(dir, 60_000, ...args);
const firnWithin = (timeout: number, ...args: string[]) => runFirn(dir, timeout, ...args);

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 2 });
  ({ deployment, deploymentFile } = await deployForCli(anvil, dir, 1));
  writeFileSync(join(dir, 'gov.key'), anvil.accounts[0]!.privateKey);
  writeFileSync(join(dir, 'verifier.key'), anvil.accounts[1]!.privateKey);
}, 60_000);
afterAll(() => anvil?.stop());

describe('careless new operator', () => {
  it('rewards show with a mistyped --epochs names the flag, not E_INTERNAL', () => {
    expectUsefulError(
      firn('rewards', 'show', '--deployment', deploymentFile, '--epochs', 'five'),
      '--epochs',
    );
  });

  it('attest verify-gpu with a missing --rims directory names it, not E_INTERNAL', () => {
    writeFileSync(join(dir, 'evidence.json'), '[]');
    const missing = join(dir, 'no-such-rims');
    expectUsefulError(
      firn(
        'attest',
        'verify-gpu',
        '--evidence',
        join(dir, 'evidence.json'),
        '--nonce',
        `0x${'ab'.repeat(32)}`,
        '--at',
        '1700000000',
        '--rims',
        missing,
      ),
      missing,
    );
  });

  it('gov revoke-measurement of a measurement that is not allow-listed (a typo) refuses instead of reporting "done"', () => {
    // The governor means to revoke a compromised SGX build but mistypes the digest (or forgets
    // --tee, which defaults to simulated): reporting success would leave the build allowed.
    const typo = `0x${'5a'.repeat(32)}`;
    const r = firn(
      'gov',
      'revoke-measurement',
      'sgx',
      typo,
      '--deployment',
      deploymentFile,
      '--key-file',
      join(dir, 'gov.key'),
    );
    expectUsefulError(r, typo);
    expect(r.out).not.toMatch(/done/);
  }, 60_000);

  it('artifact seal with a content type that already says firn-pad=padme (but no --pad) does not make artifact open cut the file', () => {
    // E.g. the content type copied from a padded artifact. Either seal refuses it, naming the
    // parameter, or open gives back exactly the bytes sealed.
    const plain = Buffer.from([0x61, 0x62, 0x63, 0x80, 0x00, 0x00]);
    const inp = join(dir, 'tail.bin');
    const sealed = join(dir, 'tail.sealed');
    const opened = join(dir, 'tail.out');
    writeFileSync(inp, plain);
    const key = join(dir, 'pad-key.json');
    expect(firn('artifact', 'keygen', '--out', key).code).toBe(0);
    const pub = (JSON.parse(readFileSync(key, 'utf8')) as { publicKey: string }).publicKey;
    const r = firn(
      'artifact',
      'seal',
      inp,
      '--out',
      sealed,
      '--recipient',
      pub,
      '--content-type',
      'application/octet-stream; firn-pad=padme',
    );
    if (r.code !== 0 || !existsSync(sealed)) {
      expectUsefulError(r, 'firn-pad');
      return;
    }
    expect(firn('artifact', 'open', sealed, '--out', opened, '--key-file', key).code).toBe(0);
    expect(Buffer.from(readFileSync(opened)).equals(plain)).toBe(true);
  });

  it('attest verify with --at in milliseconds (Date.now()) names the unit, not "certificate has expired"', () => {
    const v = 'attestation/phala-dcap-qvl';
    const r = firn(
      'attest',
      'verify',
      '--quote',
      sharedPath(`vectors/${v}/tdx_quote`),
      '--collateral',
      sharedPath(`vectors/${v}/tdx_quote_collateral.json`),
      '--at',
      String(Date.now()),
    );
    expectUsefulError(r, 'milliseconds');
  });

  it('verifier start with an account outside the verifier set says how to join, instead of running forever with NotVerifier warnings', () => {
    // README: verifiers stake; `gov admit-verifier`: "it then joins with its own stake". A new
    // verifier following them needs a way to join, and a daemon that cannot vote must say so.
    const r = firnWithin(
      20_000,
      'verifier',
      'start',
      '--deployment',
      deploymentFile,
      '--key-file',
      join(dir, 'verifier.key'),
    );
    expectUsefulError(r, '--stake');
  }, 30_000);

  it('after gov admit-verifier, verifier start --stake joins the set', async () => {
    const account = anvil.accounts[1]!.address;
    const admit = firn(
      'gov',
      'admit-verifier',
      account,
      '--deployment',
      deploymentFile,
      '--key-file',
      join(dir, 'gov.key'),
    );
    expect(admit.code, admit.out).toBe(0);
    // The daemon runs until stopped: give it time to join, then look at the chain.
    firnWithin(
      15_000,
      'verifier',
      'start',
      '--deployment',
      deploymentFile,
      '--key-file',
      join(dir, 'verifier.key'),
      '--stake',
      '1',
    );
    expect(await isVerifier(createFirnClients(anvil.rpcUrl, undefined, deployment), account)).toBe(true);
  }, 60_000);

  it('node gramine-manifest --bundle with a mistyped path names it instead of building a new image beside it', () => {
    const typo = join(dir, 'bundles', 'enclave.mjs');
    const r = firn('node', 'gramine-manifest', '--bundle', typo);
    expectUsefulError(r, typo);
    expect(existsSync(join(dir, 'bundles'))).toBe(false);
  }, 120_000);
});
