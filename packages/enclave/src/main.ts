/**
 * The enclave program's entry point: a separate OS process that speaks the framed protocol on
 * stdin/stdout. Logs go to stderr as JSON lines and never carry secrets. This entry holds the
 * keys and never imports the app: the app's code lives only in the worker entry
 * (runtime/workerMain.ts, `app/worker.mjs`), and this process learns the app's workload names and
 * first-party flag from the measured image manifest (docs/decisions/1090).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ErrorCode, FirnError, toErrorBody } from '@firn/core';
import { setTfWasmDir } from '@firn/ml';
import { createChainClock } from './chainClock.ts';
import { createEnclaveProgram } from './enclaveProgram.ts';
import { environmentFromEnv } from './evidence/environmentFromEnv.ts';
import { applyEnclaveEnvAllowList, checkGuestLaunch } from './guestLaunch.ts';
import { ENCLAVE_IMAGE_WASM_DIR, ENCLAVE_IMAGE_WORKER, verifyEnclaveImage } from './image.ts';
import { createJobHandlers } from './jobs/index.ts';
import { childProcessRuntime } from './runtime/mlRuntime.ts';
import { encodeFrame, FrameDecoder, isRequestFrame, PROTOCOL_VERSION } from './protocol.ts';

function log(level: string, msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(
    `${JSON.stringify({ t: new Date().toISOString(), level, component: 'enclave', msg, ...fields })}\n`,
  );
}

/** Methods whose errors may quote the requester's plaintext (a column, a tensor, a request field). */
const JOB_METHODS = new Set([
  'preflightJob',
  'runJob',
  'preflightSession',
  'openSession',
  'sessionRequest',
  'closeSession',
]);

/**
 * The error a request's answer carries to the host: for job and session methods only the stable
 * code (the full message reaches the requester sealed, or not at all); for the others, whose
 * inputs come from the host, the message too.
 */
function hostErrorBody(method: string, e: unknown): { code: ErrorCode; message: string } {
  const { code, message } = toErrorBody(e);
  if (!JOB_METHODS.has(method)) return { code, message };
  return {
    code,
    message: `the enclave refused the ${method} request (${code}); any details go to the requester, sealed`,
  };
}

async function main(): Promise<void> {
  // The simulated TEE measures the image as shipped: every file in it is checked against the
  // manifest (a mismatch stops the enclave) and the manifest's digest is the measurement register.
  const self = fileURLToPath(import.meta.url);
  // Node options (--require, --import, --inspect, NODE_OPTIONS) would load or expose code outside
  // the image: the enclave runs only as `node <image>/app/enclave.mjs`.
  if (process.execArgv.length > 0 || process.env.NODE_OPTIONS)
    throw new FirnError(
      'E_IMAGE_MISMATCH',
      'the enclave must run without Node options (execArgv, NODE_OPTIONS)',
    );
  // The dynamic loader's variables (LD_PRELOAD, LD_LIBRARY_PATH ahead of the image's $ORIGIN
  // RUNPATH, LD_AUDIT) and Node's (NODE_ICU_DATA, NODE_COMPILE_CACHE…) load code or data from
  // outside the image the same way. Under Gramine the measured manifest sets LD_LIBRARY_PATH itself.
  const loaderVar = Object.keys(process.env).find(
    (k) => k.startsWith('NODE_') || (k.startsWith('LD_') && process.env.FIRN_TEE !== 'sgx-gramine'),
  );
  if (loaderVar !== undefined)
    throw new FirnError(
      'E_IMAGE_MISMATCH',
      `the enclave must run without loader or Node variables in its environment (${loaderVar.slice(0, 64)})`,
    );
  // An allow-list, not a deny-list (decision 1730): in a TD or SEV-SNP guest any other variable
  // stops the enclave; elsewhere it is dropped before anything reads it or a child inherits it.
  applyEnclaveEnvAllowList(process.env, process.env.FIRN_TEE);
  // In a TD or SEV-SNP guest the hardware measured the boot, not this image: run only as the fixed
  // Node with the fixed entry of the verified root filesystem, never from a path the host chose.
  checkGuestLaunch({ tee: process.env.FIRN_TEE, entry: self, execPath: process.execPath });
  const imageDir = dirname(dirname(self));
  const image = verifyEnclaveImage(imageDir);
  if (relative(imageDir, self).split(sep).join('/') !== image.manifest.entry)
    throw new FirnError('E_IMAGE_MISMATCH', 'the running file is not the image entry');
  // The ML runtimes load only from the measured image, never from the host's node_modules.
  setTfWasmDir(join(imageDir, ENCLAVE_IMAGE_WASM_DIR));
  // The app this image serves, as measured: names and the first-party flag, never its code.
  const app = image.manifest.app;
  if (app === undefined)
    throw new FirnError('E_IMAGE_MISMATCH', 'the image manifest names no app; rebuild the image');
  if (!image.manifest.files.some((f) => f.path === ENCLAVE_IMAGE_WORKER))
    throw new FirnError('E_IMAGE_MISMATCH', `the image has no worker entry ${ENCLAVE_IMAGE_WORKER}`);
  // The key broker is the one the measured manifest pins (decision 1710); the host only routes to it.
  const env = await environmentFromEnv(process.env, image.digest, {
    ...(image.manifest.keyBroker ? { keyBroker: image.manifest.keyBroker } : {}),
  });
  const send = (o: unknown) => process.stdout.write(encodeFrame(o));
  env.emit = (event, data) => send({ v: PROTOCOL_VERSION, id: 0, event, data });
  // Each job's app and ML runtime run in a child process started from the measured worker entry; it
  // never holds the keys (docs/decisions/0851-ml-runtime-process.md).
  // The child loads the entry, onnxruntime and Node from disk when it starts, so the image is
  // checked again, against the digest measured at start, before every child.
  const children = new Set<number>();
  const runtime = childProcessRuntime({
    modulePath: join(imageDir, ...ENCLAVE_IMAGE_WORKER.split('/')),
    // The next job's child is started and warmed ahead of it, and handed to that job only (decision 1280).
    spare: true,
    onSpawn: (pid) => {
      for (const p of children) if (!isOurChild(p)) children.delete(p);
      children.add(pid);
    },
    beforeSpawn: () => {
      const now = verifyEnclaveImage(imageDir);
      if (Buffer.compare(Buffer.from(now.digest), Buffer.from(image.digest)) !== 0)
        throw new FirnError('E_IMAGE_MISMATCH', 'the enclave image changed since the enclave started');
    },
  });
  // Proof times and expiry follow chain time as the host last read it (docs/decisions/1041).
  const chainClock = createChainClock();
  const program = createEnclaveProgram(env, {
    ...createJobHandlers(runtime, undefined, {
      now: () => chainClock.now(),
      served: { workloads: app.workloads, firstParty: app.firstParty },
    }),
    setChainTime: async (params) => {
      chainClock.set(params.chainTime as number);
      return { chainTime: chainClock.now() };
    },
  });
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
          const error = hostErrorBody(f.method, e);
          log('warn', 'request failed', { method: f.method, code: error.code });
          send({ v: PROTOCOL_VERSION, id: f.id, error });
        });
    }
  });
  // The host is gone (its end of the pipe closed: exit, crash or SIGKILL): stop at once, with
  // every ML child, so no enclave keeps running a job with the node's keys beside a new one.
  const hostGone = (why: string) => {
    log('warn', 'host pipe closed; exiting', { why });
    for (const pid of children)
      if (isOurChild(pid))
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
    process.exit(0);
  };
  process.stdin.on('end', () => hostGone('end'));
  process.stdin.on('close', () => hostGone('close'));
  process.stdin.on('error', () => hostGone('error'));
  // Writing to a closed stdout (the host died mid-answer) must end the enclave too, not throw.
  process.stdout.on('error', () => hostGone('stdout'));
}

/** True when `pid` is alive and a child of this process (/proc; where /proc is absent, assume so). */
function isOurChild(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync('/proc/self');
  }
  // Fields after the parenthesised command: state, ppid, ...
  const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  return ppid === process.pid;
}

main().catch((e: unknown) => {
  log('fatal', 'enclave failed to start', toErrorBody(e));
  process.exit(1);
});
