/**
 * The enclave program's entry point: a separate OS process that speaks the framed protocol on
 * stdin/stdout. Logs go to stderr as JSON lines and never carry secrets.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { toErrorBody } from '@firn/core';
import { createEnclaveProgram } from './enclaveProgram.ts';
import { environmentFromEnv } from './evidence/environmentFromEnv.ts';
import { jobHandlers } from './jobs/index.ts';
import { encodeFrame, FrameDecoder, isRequestFrame, PROTOCOL_VERSION } from './protocol.ts';

function log(level: string, msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(
    `${JSON.stringify({ t: new Date().toISOString(), level, component: 'enclave', msg, ...fields })}\n`,
  );
}

async function main(): Promise<void> {
  // The simulated TEE measures the program as shipped: the bytes of this bundle file.
  const self = fileURLToPath(import.meta.url);
  const bundleSha256 = new Uint8Array(createHash('sha256').update(readFileSync(self)).digest());
  const env = await environmentFromEnv(process.env, bundleSha256);
  const send = (o: unknown) => process.stdout.write(encodeFrame(o));
  env.emit = (event, data) => send({ v: PROTOCOL_VERSION, id: 0, event, data });
  const program = createEnclaveProgram(env, jobHandlers);
  log('info', 'enclave started', { teeType: env.provider.teeType });
  const dec = new FrameDecoder();
  process.stdin.on('data', (chunk: Buffer) => {
    let frames: unknown[];
    try {
      frames = dec.push(chunk);
    } catch (e) {
      log('error', 'protocol error, exiting', toErrorBody(e));
      process.exit(2);
    }
    for (const f of frames) {
      if (!isRequestFrame(f)) {
        log('warn', 'dropped malformed request frame');
        continue;
      }
      program
        .handle(f.method, f.params)
        .then((result) => send({ v: PROTOCOL_VERSION, id: f.id, result }))
        .catch((e: unknown) => {
          const error = toErrorBody(e);
          log('warn', 'request failed', { method: f.method, code: error.code });
          send({ v: PROTOCOL_VERSION, id: f.id, error });
        });
    }
  });
  process.stdin.on('end', () => process.exit(0));
}

main().catch((e: unknown) => {
  log('fatal', 'enclave failed to start', toErrorBody(e));
  process.exit(1);
});
