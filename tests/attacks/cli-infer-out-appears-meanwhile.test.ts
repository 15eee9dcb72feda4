import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RpcMessage, rewritingRpcProxy } from '../../packages/chain/test/rpcProxy.ts';
import { demoModel } from '../../packages/cli/src/devnet/demo/inferenceDemo.ts';
import { startTestNetwork, stateOf, type TestNetwork } from '../e2e/network.ts';

// A careless user starts two `firn infer` runs with the same --out (a command pasted twice, a loop
// over inputs that forgot to vary --out), or saves a file there while a long job runs. Each run
// checks before paying that --out and the proof path are new files (assertWritableNew in
// packages/cli/src/commands/infer.ts), and both pass while neither has written. When the later
// one finishes, writeFilesAtomically (same file) renames its result over whatever is at --out now:
// the other paid job's decrypted result (and its proof) is silently replaced. `firn artifact
// seal|open` re-check at the end ("a file that appeared meanwhile is not replaced without
// --force", writeStreamAtomically in packages/cli/src/commands/artifact.ts); infer, train and
// `job result` do not. README: outputs are never replaced without --force.
//
// The RPC is a proxy to the network's anvil that holds the CLI's chain calls for a moment once its
// postJob transaction went through, so that the other file lands while this job is in flight.
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
const dir = mkdtempSync(join(tmpdir(), 'firn-atk-outmeanwhile-'));
const stateFile = join(dir, 'state.json');
const env = { ...process.env, FIRN_HOME: join(dir, 'home') };
let net: TestNetwork;
let proxy: { url: string; server: Server };
let posted = false;
let release: () => void = () => undefined;
const gate = new Promise<void>((r) => {
  release = r;
});

const forward = async (m: RpcMessage): Promise<unknown> =>
  (await fetch(net.anvil.rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(m),
  }).then((r) => r.json())) as unknown;

beforeAll(async () => {
  net = await startTestNetwork();
  proxy = await rewritingRpcProxy(net.anvil.rpcUrl, (m) => {
    if (m.method === 'eth_sendRawTransaction' && !posted) {
      posted = true;
      return undefined;
    }
    if (posted) return gate.then(() => forward(m));
    return undefined;
  });
  writeFileSync(stateFile, JSON.stringify({ ...stateOf(net, net.rootPem), rpcUrl: proxy.url }));
  writeFileSync(join(dir, 'model.onnx'), demoModel());
  writeFileSync(
    join(dir, 'input.json'),
    JSON.stringify({ features: { dims: [1, 4], type: 'float32', data: [1, 2, 3, 4] } }),
  );
}, 180_000);

afterAll(async () => {
  release();
  proxy?.server.closeAllConnections();
  proxy?.server.close();
  await net?.stop();
  if (net?.dataDir) rmSync(net.dataDir, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

describe('attack: a file appears at firn infer --out while the job runs', () => {
  it('the result never replaces it: the file the user has at --out is intact when the command ends', async () => {
    const c = spawn(
      process.execPath,
      [
        FIRN,
        'infer',
        '--devnet',
        stateFile,
        '--model',
        'model.onnx',
        '--input',
        'input.json',
        '--out',
        'result.json',
      ],
      { cwd: dir, env },
    );
    let out = '';
    c.stdout.on('data', (d) => {
      out += d.toString();
    });
    c.stderr.on('data', (d) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((r) => c.on('close', (code) => r(code)));
    const t0 = Date.now();
    while (!posted && Date.now() - t0 < 90_000 && c.exitCode === null)
      await new Promise((r) => setTimeout(r, 50));
    expect(posted, out).toBe(true);
    // The other run (or the user) writes its result at the same path meanwhile.
    const theirs = '{"other job":"its decrypted result, paid for"}\n';
    writeFileSync(join(dir, 'result.json'), theirs);
    writeFileSync(join(dir, 'result.proof.json'), '{"other job":"its proof"}\n');
    release();
    const killer = setTimeout(() => c.kill('SIGKILL'), 120_000);
    const code = await exited;
    clearTimeout(killer);
    expect(existsSync(join(dir, 'result.json'))).toBe(true);
    expect(
      readFileSync(join(dir, 'result.json'), 'utf8'),
      `firn infer exited ${code} and replaced result.json:\n${out}`,
    ).toBe(theirs);
  }, 240_000);
});
