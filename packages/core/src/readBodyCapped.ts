import { TooLargeError } from './errors.ts';

/**
 * Read a fetch Response body, refusing more than `cap` bytes as it streams (a peer's
 * content-length is not trusted), so an untrusted node can never make us buffer without bound.
 */
export async function readBodyCapped(res: Response, cap: number, what: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  await readBodyStreamed(res, cap, what, (chunk) => parts.push(chunk));
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * Pass a fetch Response body to `onChunk` piece by piece as it arrives, refusing more than `cap`
 * bytes (TooLargeError, the rest cancelled), and return the byte count. Nothing is kept: a body
 * that is only hashed never sits in memory whole, whatever its size.
 */
export async function readBodyStreamed(
  res: Response,
  cap: number,
  what: string,
  onChunk: (chunk: Uint8Array) => void,
): Promise<number> {
  const reader = res.body?.getReader();
  let n = 0;
  if (reader)
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      if (n > cap) {
        await reader.cancel().catch(() => undefined);
        throw new TooLargeError(what, n, cap);
      }
      onChunk(value);
    }
  return n;
}
