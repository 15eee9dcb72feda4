import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StubNodeApiServer, startStubNodeApi } from '../helpers/stubNodeApiServer.ts';

/** Send raw HTTP/1.1 bytes; resolve with the whole answer once the server closes. */
function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => {
      out += d.toString();
    });
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
    s.write(text);
    setTimeout(() => s.end(), 500).unref();
  });
}

describe('attack: a JSON route with two Content-Type headers', () => {
  let api: StubNodeApiServer;
  let port: number;
  beforeAll(async () => {
    api = await startStubNodeApi();
    port = api.port;
  });
  afterAll(() => api.close());

  it("is the caller's mistake (4xx, never 5xx), and logs no error", async () => {
    const body = JSON.stringify({ nonce: `0x${'ab'.repeat(16)}` });
    const answer = await rawRequest(
      port,
      'POST /v1/attestation HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        `Content-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    const status = Number(answer.split(' ')[1]);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(500);
    expect(api.logs.join('')).not.toMatch(/"level":"error"/);
  });
});
