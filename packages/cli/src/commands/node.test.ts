import { describe, expect, it } from 'vitest';
import { type NodeStartOptions, planEnclaveLaunch } from './node.ts';

const base: NodeStartOptions = {
  dataDir: '/tmp/firn-node-test',
  host: '127.0.0.1',
  port: '0',
  stake: '1',
  tee: 'simulated',
  register: false,
};
const broker = { kmsUrl: 'http://127.0.0.1:7400', kmsAddress: `0x${'ab'.repeat(20)}` };

describe('firn node start: enclave environment per --tee', () => {
  it('tdx needs the key broker and passes it to the enclave', async () => {
    await expect(planEnclaveLaunch({ ...base, tee: 'tdx' }, '/x')).rejects.toThrow(/--kms-url/);
    const p = await planEnclaveLaunch({ ...base, tee: 'tdx', ...broker }, '/x');
    expect(p.env).toEqual({
      FIRN_TEE: 'tdx',
      FIRN_KMS_URL: broker.kmsUrl,
      FIRN_KMS_ADDRESS: broker.kmsAddress,
    });
    expect(p.launcher).toBeUndefined();
  });

  it('the broker URL and the pinned address go together; the address is 20 bytes', async () => {
    await expect(planEnclaveLaunch({ ...base, tee: 'tdx', kmsUrl: broker.kmsUrl }, '/x')).rejects.toThrow(
      /go together/,
    );
    await expect(
      planEnclaveLaunch({ ...base, tee: 'tdx', ...broker, kmsAddress: '0x1234' }, '/x'),
    ).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
  });

  it('simulated passes its platform, GPUs, the GPU collector and (optionally) the broker', async () => {
    const p = await planEnclaveLaunch(
      { ...base, simPlatform: 'p.json', simGpus: 'g.json', gpuCollector: '["/bin/c","{nonce}"]', ...broker },
      '/x',
    );
    expect(Object.keys(p.env).sort()).toEqual([
      'FIRN_GPU_COLLECTOR',
      'FIRN_KMS_ADDRESS',
      'FIRN_KMS_URL',
      'FIRN_SIM_GPUS',
      'FIRN_SIM_PLATFORM',
      'FIRN_TEE',
    ]);
    await expect(planEnclaveLaunch({ ...base }, '/x')).rejects.toThrow(/--sim-platform/);
    await expect(planEnclaveLaunch({ ...base, tee: 'sev' }, '/x')).rejects.toThrow(/unknown --tee/);
  });
});
