import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hex } from '@firn/core';
import { createEnclaveProgram, GUEST_ENCLAVE_ENTRY, GUEST_NODE_PATH } from '@firn/enclave';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type NodeStartOptions,
  planEnclaveLaunch,
  startNodeCommand,
} from '../../packages/cli/src/commands/node.ts';
import { environmentFromEnv } from '../../packages/enclave/src/evidence/environmentFromEnv.ts';
import { buildEnclaveImage } from '../../packages/node/src/enclaveImage.ts';
import { EnclaveSupervisor } from '../../packages/node/src/enclaveSupervisor.ts';
import { createLogger } from '../../packages/node/src/logger.ts';

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
//
// Safe outcome (decision 1730): a TD (and an SEV-SNP guest) runs only the enclave image fixed on
// its verified root filesystem, GUEST_ENCLAVE_ENTRY, under the fixed GUEST_NODE_PATH; that file
// system's root hash is on the measured kernel command line, so another image is another TD
// measurement (another broker key, another allow-list entry). The CLI refuses --bundle / --app
// for a TD, the supervisor starts nothing else, and the enclave entry stops when it is not the
// fixed file run by the fixed Node.
//
// This file first asserted that the TD's enclave identity differs when main.ts passes another
// image digest to environmentFromEnv. That cannot be the guarantee: main.ts is part of the image,
// so an image the host wrote passes whatever digest it likes (the genuine one), and a TD's identity
// is its quote's registers, which cover the boot and not files read later. What keeps the host's
// image out of the genuine identity is that it never runs in that TD; that is asserted below.
const dir = mkdtempSync(join(tmpdir(), 'firn-tdx-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (s: string) => new Uint8Array(createHash('sha256').update(s).digest());
const GENUINE = sha('the firn enclave image on the verified root filesystem');
const HOSTS = sha('an image the host wrote to /tmp: same pin, its own worker entry');
const broker = { address: `0x${'ab'.repeat(20)}` as Hex };
const quiet = createLogger({}, { write: () => undefined });

describe('the host picks the enclave image a TD runs (--bundle / --app)', () => {
  const base: NodeStartOptions = {
    dataDir: join(dir, 'node'),
    host: '127.0.0.1',
    port: '0',
    stake: '1',
    tee: 'tdx',
    register: false,
    kmsUrl: 'http://kms.example:7400',
  };
  const hostEntry = join(dir, 'host-image', 'app', 'enclave.mjs');

  it('the CLI starts a TD from no image the host names: --bundle and --app are refused, naming the fixed path', async () => {
    await expect(planEnclaveLaunch(base, hostEntry, { keyBroker: broker })).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      message: expect.stringContaining(GUEST_ENCLAVE_ENTRY),
    });
    await expect(startNodeCommand({ ...base, bundle: hostEntry })).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      message: expect.stringMatching(
        /--bundle is not taken with --tee tdx.*\/opt\/firn\/image\/app\/enclave\.mjs/,
      ),
    });
    // --app would build an image from a host folder at start: refused before anything is built.
    const appDir = join(dir, 'host-app');
    mkdirSync(appDir, { recursive: true });
    writeFileSync(join(appDir, 'package.json'), '{"name":"host-app","type":"module"}');
    await expect(startNodeCommand({ ...base, app: [appDir] })).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      message: expect.stringMatching(
        /--app is not taken with --tee tdx.*\/opt\/firn\/image\/app\/enclave\.mjs/,
      ),
    });
    expect(existsSync(join(base.dataDir, 'app-image'))).toBe(false);
  });

  it('the supervisor starts a TD or SEV-SNP enclave only as the fixed Node with the fixed entry', () => {
    for (const tee of ['tdx', 'sev-snp']) {
      const env = { FIRN_TEE: tee, FIRN_KMS_URL: 'http://kms.example:7400' };
      expect(() => new EnclaveSupervisor({ bundlePath: hostEntry, env, logger: quiet })).toThrow(
        GUEST_ENCLAVE_ENTRY,
      );
      const cmd = new EnclaveSupervisor({ bundlePath: GUEST_ENCLAVE_ENTRY, env, logger: quiet }).command();
      expect([cmd.file, ...cmd.args]).toEqual([GUEST_NODE_PATH, GUEST_ENCLAVE_ENTRY]);
    }
  });

  it('the genuine image started from a path the host chose does not start as a TD or SEV-SNP enclave', async () => {
    // Even a launcher the host wrote itself (no CLI, no supervisor) gets no enclave from the
    // genuine image outside the fixed path: it stops before it asks for a quote or a key.
    const image = await buildEnclaveImage(join(dir, 'copy'), { keyBroker: broker.address });
    for (const tee of ['tdx', 'sev-snp']) {
      const r = spawnSync(process.execPath, [image.entry], {
        env: { FIRN_TEE: tee, FIRN_KMS_URL: 'http://127.0.0.1:1' },
        input: '',
        timeout: 30_000,
      });
      expect(r.status).toBe(1);
      expect(r.stderr.toString()).toMatch(/E_IMAGE_MISMATCH/);
      expect(r.stderr.toString()).toContain(GUEST_ENCLAVE_ENTRY);
    }
  }, 120_000);

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
