import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hex } from '@firn/core';
import { createEnclaveProgram } from '@firn/enclave';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, describe, expect, it } from 'vitest';
import { type NodeStartOptions, planEnclaveLaunch } from '../../packages/cli/src/commands/node.ts';
import { environmentFromEnv } from '../../packages/enclave/src/evidence/environmentFromEnv.ts';
import type { TsmFs } from '../../packages/enclave/src/evidence/tdxConfigfs.ts';

// A malicious host against everything a TD's enclave holds (TDX: docs/deploy-tdx-h100.md).
//
// `firn node start --tee tdx --bundle PATH` (or `--app DIR`, which builds an image from a folder)
// lets the host name the enclave program the node supervisor spawns inside the TD
// (enclaveSupervisor.command(): `node <bundlePath>`). The enclave checks that image only against
// its OWN manifest (main.ts verifyEnclaveImage), and on TDX its identity is the TD's boot registers
// read from its own quote (environmentFromEnv.ts, tdx branch: `measurementRegisters: self.registers`;
// the image digest main passes as `bundleSha256` is ignored, and nothing extends an RTMR with it).
// So an image the host wrote on any writable path of the guest (a copy of the genuine one with
// its worker entry changed, or its own app), pinning the genuine broker in its own manifest, runs
// inside the TD with the SAME measurement, platform and Enclave ID as the genuine enclave:
//  - the genuine broker derives HKDF(master, tdx, measurement, PPID) for it, i.e. the genuine
//    enclave's sealing key, so the host's code opens the node's sealed signing and KEM keys;
//  - verifiers and requesters see the allow-listed measurement and send it grants and inputs.
// This is 1711's "code of the host's choice inside the TD" through the flag that selects the
// enclave itself; 1712's audit covered environment variables, not the bundle path.
// (No TDX hardware here: configfs-tsm is the captured real quote, as in tdxLauncher.test.ts.)
const TDX = readFileSync(
  join(import.meta.dirname, '../../packages/enclave/src/evidence/fixtures/tdx_quote.bin'),
);
const dir = mkdtempSync(join(tmpdir(), 'firn-tdx-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fakeKernel(): TsmFs {
  const entries = new Map<string, Map<string, Uint8Array>>();
  const parent = (p: string) => p.slice(0, p.lastIndexOf('/'));
  const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
  return {
    mkdir: async (p) => {
      entries.set(
        p,
        new Map([
          ['provider', Buffer.from('tdx_guest\n')],
          ['generation', Buffer.from('0\n')],
          ['outblob', TDX],
        ]),
      );
    },
    rmdir: async (p) => entries.delete(p),
    readFile: async (p) => {
      const v = entries.get(parent(p))?.get(base(p));
      if (!v) throw new Error('ENOENT');
      return v;
    },
    writeFile: async (p, data) => {
      const e = entries.get(parent(p))!;
      e.set(base(p), data);
      e.set('generation', Buffer.from(`${Number(Buffer.from(e.get('generation')!).toString()) + 1}\n`));
    },
  };
}

const sha = (s: string) => new Uint8Array(createHash('sha256').update(s).digest());
const GENUINE = sha('the firn enclave image on the verified root filesystem');
const HOSTS = sha('an image the host wrote to /tmp: same pin, its own worker entry');
const broker = { address: `0x${'ab'.repeat(20)}` as Hex };

describe('the host picks the enclave image a TD runs (--bundle / --app)', () => {
  it('a TD running an image the host wrote does not present the genuine enclave identity', async () => {
    // The CLI takes any --bundle for a TD: nothing ties it to the measured guest.
    const base: NodeStartOptions = {
      dataDir: join(dir, 'node'),
      host: '127.0.0.1',
      port: '0',
      stake: '1',
      tee: 'tdx',
      register: false,
      kmsUrl: 'http://kms.example:7400',
    };
    const plan = await planEnclaveLaunch(base, join(dir, 'host-image', 'app', 'enclave.mjs'), {
      keyBroker: broker,
    });
    expect(plan.env.FIRN_TEE).toBe('tdx');

    // main.ts: environmentFromEnv(process.env, image.digest, { keyBroker: manifest.keyBroker }).
    const identity = async (digest: Uint8Array) => {
      const env = await environmentFromEnv(plan.env, digest, { tsmFs: fakeKernel(), keyBroker: broker });
      const hello = (await createEnclaveProgram(env).handle('hello', {})) as { measurement: string };
      return { measurement: hello.measurement, platformId: Buffer.from(env.platformId).toString('hex') };
    };
    const genuine = await identity(GENUINE);
    const hosts = await identity(HOSTS);
    expect(hosts.platformId).toBe(genuine.platformId);
    // Safe outcome: another image is another measured identity (so another broker key, another
    // allow-list entry). On the current code both are the TD's boot measurement.
    expect(hosts.measurement).not.toBe(genuine.measurement);
  });

  it('(contrast) the simulated TEE does measure the image digest', async () => {
    const root = await createSimulatedRoot();
    const platformFile = join(dir, 'sim.json');
    writeFileSync(platformFile, JSON.stringify(await createSimulatedPlatform(root)));
    const m = async (d: Uint8Array) =>
      (
        (await createEnclaveProgram(
          await environmentFromEnv({ FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformFile }, d),
        ).handle('hello', {})) as { measurement: string }
      ).measurement;
    expect(await m(HOSTS)).not.toBe(await m(GENUINE));
  });
});
