import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { prepareAppJob, type RunAppOptions } from './runApp.ts';

// An app job's extra recipient that is a low-order X25519 point (every HPKE to it has the all-zero
// shared secret RFC 9180 §7.1.4 refuses) is refused before the SDK asks any node or chain
// anything: nothing is sealed, uploaded or posted (escrow never leaves).
describe('prepareAppJob refuses a low-order extra recipient up front', () => {
  it('names the recipient by index and makes no call', async () => {
    let calls = 0;
    const rpc = createServer((_req, res) => {
      calls++;
      res.writeHead(500).end();
    });
    await new Promise<void>((r) => rpc.listen(0, '127.0.0.1', r));
    try {
      const order8 = new Uint8Array(
        Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex'),
      );
      const opts = {
        app: `0x${'ab'.repeat(32)}`,
        rpcUrl: `http://127.0.0.1:${(rpc.address() as AddressInfo).port}`,
        recipients: [new Uint8Array(32).fill(9), order8],
        inputs: [],
      } as unknown as RunAppOptions;
      await expect(prepareAppJob(opts)).rejects.toMatchObject({
        code: 'E_INVALID_INPUT',
        message: expect.stringMatching(/extra recipient 1 .*low-order/),
      });
      expect(calls).toBe(0);
    } finally {
      rpc.close();
    }
  });
});
