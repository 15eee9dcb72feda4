import { hexToBytes, jobChannelInfo, parseJobRequest } from '@firn/core';
import { acceptChannel, generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import { buildJobRequest } from './buildJobRequest.ts';

const h = (b: number, n = 32) => `0x${b.toString(16).padStart(2, '0').repeat(n)}` as const;

async function build(maxOutputBytes?: number) {
  const enclave = await generateKemKeyPair();
  const requester = generateSigningKey();
  const built = await buildJobRequest({
    jobId: h(1),
    kind: 'inference',
    inputs: [{ role: 'model', artifactId: h(2), dataKey: new Uint8Array(32).fill(3) }],
    params: {},
    requesterKey: `0x${Buffer.from(requester.privateKey).toString('hex')}`,
    enclave: { enclaveId: h(4), kemPublicKey: `0x${Buffer.from(enclave.publicKey).toString('hex')}` },
    resultRecipient: new Uint8Array(32).fill(5),
    domain: { chainId: 31337, jobMarket: h(6, 20) },
    grantExpiresAt: 2_000_000_000,
    grantIssuedAt: 1_900_000_000,
    ...(maxOutputBytes === undefined ? {} : { maxOutputBytes }),
  });
  return { built, enclave };
}

describe("buildJobRequest's output bound (decision 1690)", () => {
  it('seals the bound in the request and names the same one in the submission body', async () => {
    const { built, enclave } = await build(64 * 1024 ** 2);
    expect(built.body.maxOutputBytes).toBe(64 * 1024 ** 2);
    const channel = await acceptChannel(enclave.privateKey, hexToBytes(built.body.enc), {
      info: jobChannelInfo(h(1)),
    });
    const req = parseJobRequest(await channel.openRequest(built.body.ciphertext));
    expect(req.maxOutputBytes).toBe(64 * 1024 ** 2);
  });
  it('declares none unless asked (the body and request have no field)', async () => {
    const { built } = await build();
    expect('maxOutputBytes' in built.body).toBe(false);
    expect('maxOutputBytes' in built.request).toBe(false);
  });
  it('refuses a bound outside 4096..2 GiB before sealing anything', async () => {
    await expect(build(4095)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
    await expect(build(2 ** 31 + 1)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
  });
});
