// A hostile node (in this process) answers GET /v1/jobs/{id}/result with a JSON object whose
// `outputs` array holds `count` empty objects (3 bytes each: `{},`), within the requester's 64 MiB
// answer cap and at depth 2, streamed without a content-length; the requester's NodeApi reads it.
// Prints the error code the requester got (or "ok").
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NodeApi } from '@firn/client';

const count = Number(process.argv[2] ?? 20_000_000);
const job = `0x${'ab'.repeat(32)}`;
const block = Buffer.from('{},'.repeat(1 << 18));
const perBlock = 1 << 18;
const server = createServer(async (req, res) => {
  req.resume();
  res.setHeader('content-type', 'application/json');
  res.write(`{"jobId":"${job}","response":"","outputs":[`);
  for (let left = count; left > 0; left -= perBlock) {
    const b = left >= perBlock ? block : block.subarray(0, left * 3);
    if (!res.write(b)) await new Promise((r) => res.once('drain', r));
  }
  res.end('{}]}');
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
try {
  await new NodeApi(url, 60_000).getResult(job as `0x${string}`);
  console.log('ok');
} catch (e) {
  console.log((e as { code?: string }).code ?? String(e));
}
server.close();
