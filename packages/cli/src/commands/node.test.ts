import { describe, expect, it } from 'vitest';
import { GUEST_ENCLAVE_ENTRY } from '@firn/enclave';
import { type NodeStartOptions, planEnclaveLaunch } from './node.ts';

/** The only entry a TD runs (decision 1730). */
const TD = GUEST_ENCLAVE_ENTRY;

const base: NodeStartOptions = {
  dataDir: '/tmp/firn-node-test',
  host: '127.0.0.1',
  port: '0',
  stake: '1',
  tee: 'simulated',
  register: false,
};
const broker = { kmsUrl: 'http://127.0.0.1:7400', kmsAddress: `0x${'ab'.repeat(20)}` };

const pinned = { keyBroker: { address: broker.kmsAddress } };

describe('firn node start: enclave environment per --tee', () => {
  it('tdx needs an image that pins the key broker, and passes only where it listens', async () => {
    await expect(planEnclaveLaunch({ ...base, tee: 'tdx' }, TD, {})).rejects.toThrow(/--key-broker/);
    await expect(planEnclaveLaunch({ ...base, tee: 'tdx' }, TD, pinned)).rejects.toThrow(/--kms-url/);
    const p = await planEnclaveLaunch({ ...base, tee: 'tdx', kmsUrl: broker.kmsUrl }, TD, pinned);
    expect(p.env).toEqual({ FIRN_TEE: 'tdx', FIRN_KMS_URL: broker.kmsUrl });
    expect(p.launcher).toBeUndefined();
  });

  it('tdx runs only the image fixed on the guest filesystem: any other entry is refused, naming it', async () => {
    for (const path of ['/x', '/opt/firn/image/../image-host/app/enclave.mjs', `${TD}.host`])
      await expect(
        planEnclaveLaunch({ ...base, tee: 'tdx', kmsUrl: broker.kmsUrl }, path, pinned),
      ).rejects.toMatchObject({ code: 'E_INVALID_INPUT', message: expect.stringContaining(TD) });
  });

  it('the host cannot name a broker: --kms-url needs a pin in the image, --kms-address must equal it', async () => {
    await expect(planEnclaveLaunch({ ...base, tee: 'tdx', ...broker }, TD, {})).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      message: expect.stringContaining('pins no key broker'),
    });
    await expect(
      planEnclaveLaunch({ ...base, simPlatform: 'p.json', kmsUrl: broker.kmsUrl }, '/x', {}),
    ).rejects.toMatchObject({ code: 'E_INVALID_INPUT', message: expect.stringContaining('--key-broker') });
    await expect(
      planEnclaveLaunch({ ...base, tee: 'tdx', ...broker, kmsAddress: `0x${'cd'.repeat(20)}` }, TD, pinned),
    ).rejects.toThrow(/is not the key broker the enclave image pins/);
    await expect(
      planEnclaveLaunch({ ...base, tee: 'tdx', ...broker, kmsAddress: '0x1234' }, TD, pinned),
    ).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
    const ok = await planEnclaveLaunch({ ...base, tee: 'tdx', ...broker }, TD, pinned);
    expect(ok.env).toEqual({ FIRN_TEE: 'tdx', FIRN_KMS_URL: broker.kmsUrl });
  });

  it('simulated passes its platform, GPUs and (with a pinned image) the broker URL; never a collector', async () => {
    const p = await planEnclaveLaunch(
      { ...base, simPlatform: 'p.json', simGpus: 'g.json', ...broker },
      '/x',
      pinned,
    );
    expect(Object.keys(p.env).sort()).toEqual([
      'FIRN_KMS_URL',
      'FIRN_SIM_GPUS',
      'FIRN_SIM_PLATFORM',
      'FIRN_TEE',
    ]);
    await expect(planEnclaveLaunch({ ...base }, '/x', {})).rejects.toThrow(/--sim-platform/);
    await expect(planEnclaveLaunch({ ...base, tee: 'sev' }, '/x', {})).rejects.toThrow(/unknown --tee/);
  });
});
