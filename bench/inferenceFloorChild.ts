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
 * connection. Frames, both ways (bench/rawFrames.ts): u32 big-endian body length, then the body. A request body is
 * u32 rows, u32 features, then rows x features float32 (little-endian); the answer body is the
 * first output's float32 elements. Not a benchmark itself (bench/index.ts lists it as a helper).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { loadOnnxModel } from '@firn/ml';
import { readRawFrames, writeRawFrame } from './rawFrames.ts';

const modelPath = process.argv[2];
if (!modelPath || !process.send) throw new Error('usage: forked with MODEL_PATH and an IPC channel');
const model = await loadOnnxModel(new Uint8Array(readFileSync(modelPath)), { intraOpThreads: 1 });

/** Serve `socket`: read whole frames, run each in turn, answer. */
function serve(socket: Socket): void {
  socket.setNoDelay(true);
  let busy = Promise.resolve();
  readRawFrames(socket, Buffer.allocUnsafe, (frame) => {
    busy = busy.then(async () => {
      const rows = frame.readUInt32BE(0);
      const features = frame.readUInt32BE(4);
      // An aligned copy of the elements, as a decoder must make for a view at an odd offset.
      const data = new Float32Array(rows * features);
      new Uint8Array(data.buffer).set(frame.subarray(8, 8 + data.byteLength));
      const out = await model.run({ input: { type: 'float32', dims: [rows, features], data } });
      const first = Object.values(out)[0]!.data as Float32Array;
      writeRawFrame(socket, [new Uint8Array(first.buffer, first.byteOffset, first.byteLength)]);
    });
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
