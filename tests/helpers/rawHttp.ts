import { connect } from 'node:net';

/**
 * Raw HTTP/1.1 over one new socket to 127.0.0.1:`port`: `parts` written in order (`gapMs` apart,
 * Nagle off; writing stops once the node has closed the socket), and every byte the node wrote
 * back (latin1) until it closed the socket, or `waitMs` passed. The socket is not half-closed:
 * requests that must end should say `Connection: close`.
 */
export function rawHttp(
  port: number,
  parts: Buffer | string | (Buffer | string)[],
  o: { gapMs?: number; waitMs?: number } = {},
): Promise<string> {
  const list = Array.isArray(parts) ? parts : [parts];
  const gapMs = o.gapMs ?? 0;
  return new Promise((resolve) => {
    let got = '';
    const s = connect(port, '127.0.0.1', async () => {
      s.setNoDelay(true);
      for (const p of list) {
        if (s.destroyed) break;
        s.write(p);
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
    s.on('data', (d) => {
      got += d.toString('latin1');
    });
    s.on('error', () => resolve(got));
    s.on('close', () => resolve(got));
    setTimeout(() => {
      s.destroy();
      resolve(got);
    }, o.waitMs ?? 5_000).unref();
  });
}

/** The status code of a raw HTTP/1.1 answer (0 when there is none). */
export const rawStatus = (answer: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);

/** The body of a raw HTTP/1.1 answer (after the blank line). */
export const rawBody = (answer: string): string => answer.slice(answer.indexOf('\r\n\r\n') + 4);
