// A hostile node (in this process) answers GET /v1/jobs/{id} with `depth` nested JSON arrays,
// within the requester's 64 MiB answer cap, streamed without a content-length; the requester's
// NodeApi reads it. Prints the error code the requester got (or "ok").
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NodeApi } from '@firn/client';

const depth = Number(process.argv[2] ?? 20_000_000);
const open = Buffer.alloc(1 << 20, '[');
const close = Buffer.alloc(1 << 20, ']');
const server = createServer(async (req, res) => {
  req.resume();
  res.setHeader('content-type', 'application/json');
  for (const b of [open, close])
    for (let left = depth; left > 0; left -= b.length) {
      if (!res.write(left >= b.length ? b : b.subarray(0, left)))
        await new Promise((r) => res.once('drain', r));
    }
  res.end();
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
try {
  await new NodeApi(url, 60_000).getJob(`0x${'ab'.repeat(32)}`);
  console.log('ok');
} catch (e) {
  console.log((e as { code?: string }).code ?? String(e));
}
server.close();
