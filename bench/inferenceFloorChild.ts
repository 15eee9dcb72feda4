/**
 * The transport floor of the confidential-inference benchmark (bench/confidentialInference.ts):
 * plain onnxruntime in a second process behind one TCP loopback hop, with nothing of firn's on
 * the path: no encryption, no padding, no sequence numbers, no transcript, no tensor encoding.
 * What a request costs here above plain in-process onnxruntime is what any design that runs the
 * model in another process (as a TEE must) pays on this machine before firn does anything.
 *
 * Started by the benchmark with `run-ts.mjs bench/inferenceFloorChild.ts MODEL_PATH`; it loads the
 * model with the same settings as plain (`loadOnnxModel`, intraOpThreads 1), listens on an
 * ephemeral port of 127.0.0.1 and sends that port to its parent over IPC, then serves one
 * connection. Frames, both ways: u32 big-endian body length, then the body. A request body is
 * u32 rows, u32 features, then rows x features float32 (little-endian); the answer body is the
 * first output's float32 elements. Not a benchmark itself (bench/index.ts lists it as a helper).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { loadOnnxModel } from '@firn/ml';

const modelPath = process.argv[2];
if (!modelPath || !process.send) throw new Error('usage: forked with MODEL_PATH and an IPC channel');
const model = await loadOnnxModel(new Uint8Array(readFileSync(modelPath)), { intraOpThreads: 1 });

/** Serve `socket`: read whole frames (one preallocated buffer per frame), run, answer. */
function serve(socket: Socket): void {
  socket.setNoDelay(true);
  let head = Buffer.alloc(0);
  let body: Buffer | undefined;
  let filled = 0;
  let busy = Promise.resolve();
  const onFrame = (frame: Buffer) => {
    busy = busy.then(async () => {
      const rows = frame.readUInt32BE(0);
      const features = frame.readUInt32BE(4);
      // An aligned copy of the elements, as a decoder must make for a view at an odd offset.
      const data = new Float32Array(rows * features);
      new Uint8Array(data.buffer).set(frame.subarray(8, 8 + data.byteLength));
      const out = await model.run({ input: { type: 'float32', dims: [rows, features], data } });
      const first = Object.values(out)[0]!.data as Float32Array;
      const len = Buffer.alloc(4);
      len.writeUInt32BE(first.byteLength, 0);
      socket.cork();
      socket.write(len);
      socket.write(new Uint8Array(first.buffer, first.byteOffset, first.byteLength));
      socket.uncork();
    });
  };
  socket.on('data', (chunk: Buffer) => {
    let at = 0;
    while (at < chunk.length) {
      if (body === undefined) {
        const need = 4 - head.length;
        head = Buffer.concat([head, chunk.subarray(at, at + need)]);
        at += Math.min(need, chunk.length - at);
        if (head.length < 4) return;
        body = Buffer.allocUnsafe(head.readUInt32BE(0));
        filled = 0;
        head = Buffer.alloc(0);
      }
      const n = Math.min(body.length - filled, chunk.length - at);
      chunk.copy(body, filled, at, at + n);
      filled += n;
      at += n;
      if (filled === body.length) {
        const frame = body;
        body = undefined;
        onFrame(frame);
      }
    }
  });
  socket.on('error', () => undefined);
  socket.on('close', () => process.exit(0));
}

const server = createServer({ noDelay: true }, (socket) => {
  server.close();
  serve(socket);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send!({ port: typeof address === 'object' && address ? address.port : 0 });
});
process.on('disconnect', () => process.exit(0));
