import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openOutput } from '@firn/client';
import { bytesToHex, hexBytes, repoRoot } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { buildAppImage } from '@firn/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactGrant, artifactKeygen, artifactSeal } from '../../packages/cli/src/commands/artifact.ts';
import { dataVerifyCommand } from '../../packages/cli/src/commands/data.ts';
import { proofVerifyCommand } from '../../packages/cli/src/commands/proof.ts';
import { runCommand } from '../../packages/cli/src/commands/run.ts';
import { type Devnet, startDevnet } from '../../packages/cli/src/devnet/startDevnet.ts';

// Issue 12, as it will be checked: an app written in a temporary folder outside the repository
// against the @firn/app API builds twice to one measurement; a devnet hosts it (`--app`) and the
// clean-room example; `firn run` returns the expected bytes and a proof that `firn proof verify
// --devnet` accepts; `firn data verify` accepts its signed record and refuses it with one byte
// changed; the clean room runs with two owners' keys, each granting its own list, both reading
// the result.

const APP_SOURCE = `import { defineApp } from '@firn/app';
import { sha256 } from '@noble/hashes/sha2.js';

export default defineApp({
  name: 'example',
  version: '1.0.0',
  workloads: {
    async reverse(ctx) {
      const data = ctx.input('data');
      await ctx.signData(sha256(data), { topic: 'digest' });
      ctx.progress({ stage: 'reversing', bytes: data.length });
      return {
        outputs: [{ role: 'result', contentType: 'application/octet-stream', bytes: data.slice().reverse() }],
        workUnits: 1n,
      };
    },
  },
});
`;

let net: Devnet;
let work: string;
let appDir: string;
let stateFile: string;
let measurement: string;
const cleanRoom = join(repoRoot(), 'examples', 'clean-room');

describe('developer apps on a devnet (issue 12)', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'firn-app-e2e-'));
    appDir = join(mkdtempSync(join(tmpdir(), 'firn-my-app-')), 'my-app');
    mkdirSync(join(appDir, 'src'), { recursive: true });
    writeFileSync(join(appDir, 'src', 'index.ts'), APP_SOURCE);
    // The first build; the devnet builds it a second time, into its own folder (compared below).
    measurement = (await buildAppImage({ appDir, outDir: join(work, 'build-1') })).measurement;
    net = await startDevnet({
      dir: join(work, 'devnet'),
      nodes: 1,
      verifiers: 1,
      gpuNodes: 0,
      readyTimeout: 90,
      apps: [appDir, cleanRoom],
      log: () => {},
    });
    stateFile = join(work, 'devnet.json');
    writeFileSync(stateFile, JSON.stringify(net.state), { mode: 0o600 });
  }, 240_000);
  afterAll(async () => {
    await net?.stop();
  });

  it('hosts each app on its own node, registered with the app measurement', () => {
    expect(net.apps.map((a) => a.measurement)).toEqual([
      measurement,
      expect.stringMatching(/^0x[0-9a-f]{64}$/),
    ]);
    expect(new Set(net.state.nodes.map((n) => n.enclaveId)).size).toBe(3);
    expect(net.state.apps?.[0]?.workloads).toEqual(['reverse']);
  });

  it('firn run returns the expected bytes, a proof that proof verify accepts, and a record data verify accepts', async () => {
    const input = join(work, 'input.bin');
    writeFileSync(input, 'hello, enclave');
    const out = join(work, 'run-1');
    const r = await runCommand({
      devnet: stateFile,
      app: appDir,
      workload: 'reverse',
      input: [`data=${input}`],
      out,
      escrow: '0.01',
    });
    expect(r.proofOk).toBe(true);
    expect(readFileSync(join(out, 'result'), 'utf8')).toBe('evalcne ,olleh');
    const proof = await proofVerifyCommand(join(out, 'proof.json'), { devnet: stateFile });
    expect(proof.reasons).toEqual([]);
    expect(proof.ok).toBe(true);
    const ok = await dataVerifyCommand({ devnet: stateFile, record: join(out, 'records.json') });
    expect(ok.ok).toBe(true);
    expect(ok.records[0]!.measurement).toBe(measurement);
    // One byte of the record changed: refused.
    const text = readFileSync(join(out, 'records.json'), 'utf8');
    const at = text.indexOf('"signature": "0x') + 20;
    const bad = join(work, 'records-bad.json');
    writeFileSync(bad, text.slice(0, at) + (text[at] === '0' ? '1' : '0') + text.slice(at + 1));
    expect((await dataVerifyCommand({ devnet: stateFile, record: bad })).ok).toBe(false);
  }, 90_000);

  it('runs the clean room with two owners: each grants its own list, both read the overlap', async () => {
    const bobKem = join(work, 'bob.kem');
    const { publicKey } = await artifactKeygen({ out: bobKem });
    const bobSealed = join(work, 'bob.sealed');
    await artifactSeal({
      in: join(cleanRoom, 'data', 'right.txt'),
      out: bobSealed,
      recipients: [publicKey],
      contentType: 'text/plain',
    });
    const bobKey = join(work, 'bob.key');
    writeFileSync(bobKey, bytesToHex(generateSigningKey().privateKey), { mode: 0o600 });
    const out = join(work, 'clean-room');
    const alice = await generateKemKeyPair();
    const aliceKem = join(work, 'alice.kem');
    writeFileSync(
      aliceKem,
      JSON.stringify({ privateKey: bytesToHex(alice.privateKey), publicKey: bytesToHex(alice.publicKey) }),
    );
    const running = runCommand({
      devnet: stateFile,
      app: cleanRoom,
      workload: 'overlap',
      input: [`left=${join(cleanRoom, 'data', 'left.txt')}`],
      inputSealed: [`right=${bobSealed}`],
      recipient: [publicKey],
      kemKeyFile: aliceKem,
      out,
      escrow: '0.01',
      grantTimeout: '60',
    });
    // Bob waits for Alice's job plan, checks it against the chain and the enclave, and grants.
    const plan = join(out, 'plan.json');
    const until = Date.now() + 60_000;
    while (!existsSync(plan) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    mkdirSync(join(out, 'grants'), { recursive: true });
    const g = await artifactGrant({
      devnet: stateFile,
      plan,
      role: 'right',
      sealed: bobSealed,
      kemKeyFile: bobKem,
      ownerKeyFile: bobKey,
      requireRecipient: true,
      out: join(out, 'grants', 'right.json'),
    });
    expect(g.role).toBe('right');
    const r = await running;
    expect(r.proofOk).toBe(true);
    const aliceResult = JSON.parse(readFileSync(join(out, 'result'), 'utf8')) as { overlap: number };
    expect(aliceResult.overlap).toBe(40);
    const bobOpened = await openOutput(
      new Uint8Array(readFileSync(join(out, 'sealed', 'result.sealed'))),
      hexBytes(JSON.parse(readFileSync(bobKem, 'utf8')).privateKey, 'bob', 32),
    );
    expect(JSON.parse(new TextDecoder().decode(bobOpened.bytes))).toEqual(aliceResult);
    // Alice cannot open Bob's list; the ledger holds the enclave-signed commitment.
    await expect(openOutput(new Uint8Array(readFileSync(bobSealed)), alice.privateKey)).rejects.toThrow();
    expect((await dataVerifyCommand({ devnet: stateFile, record: join(out, 'records.json') })).ok).toBe(true);
    expect(resolve(out)).toBe(out);
  }, 90_000);
});
