import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFirnClients, finalizeJob, getJob, JobStatus } from '@firn/chain';
import { NodeApi, sealInput } from '@firn/client';
import { paddedContentType, padPlaintext } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { encodeOnnxModel, loadOnnxModel, parseTensorMap } from '@firn/ml';
import { checkSubmittedProof, ProofChecker } from '@firn/verifier';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModel, runInferenceDemo } from '../../packages/cli/src/devnet/demo/inferenceDemo.ts';
import { artifactKeygen, artifactOpen, artifactSeal } from '../../packages/cli/src/commands/artifact.ts';
import { inferCommand } from '../../packages/cli/src/commands/infer.ts';
import { resolveChain } from '../../packages/cli/src/chainArgs.ts';
import { jobFinalize } from '../../packages/cli/src/commands/job.ts';
import { proofVerifyCommand } from '../../packages/cli/src/commands/proof.ts';
import { governBundleMeasurement } from '../helpers/governBundleMeasurement.ts';
import { filesUnder, increaseTime, startTestNetwork, stateOf, type TestNetwork } from './network.ts';

// The CLI's testable cores against a live network, the verifier's proof re-check (both the
// verifier daemons' watch and a direct dispute), and the devnet demo. Not covered: the commander
// wiring in main.ts (owned elsewhere).
let net: TestNetwork;
const dir = mkdtempSync(join(tmpdir(), 'firn-cli-'));
let stateFile: string;
beforeAll(async () => {
  net = await startTestNetwork();
  stateFile = join(dir, 'state.json');
  writeFileSync(stateFile, JSON.stringify(stateOf(net, net.rootPem)));
}, 120_000);
afterAll(() => net?.stop());

/** A model with two inputs and two outputs, not used elsewhere in the tests. */
function twoHeadModel(): Uint8Array {
  const f = (n: number, s: number) => Float32Array.from({ length: n }, (_v, i) => Math.tan(0.1 * i + s) / 4);
  return encodeOnnxModel({
    name: 'cli_two_head',
    nodes: [
      { opType: 'MatMul', inputs: ['a', 'W'], outputs: ['aw'] },
      { opType: 'Add', inputs: ['aw', 'bias'], outputs: ['sum'] },
      { opType: 'Tanh', inputs: ['sum'], outputs: ['t'] },
      { opType: 'Mul', inputs: ['t', 'scale'], outputs: ['scaled'] },
      { opType: 'Sigmoid', inputs: ['sum'], outputs: ['s'] },
    ],
    initializers: [{ name: 'W', dims: [5, 3], dtype: 'float', data: f(15, 0.3) }],
    inputs: [
      { name: 'a', elemType: 'float', shape: ['N', 5] },
      { name: 'bias', elemType: 'float', shape: [3] },
      { name: 'scale', elemType: 'float', shape: ['N', 3] },
    ],
    outputs: [
      { name: 'scaled', elemType: 'float', shape: ['N', 3] },
      { name: 's', elemType: 'float', shape: ['N', 3] },
    ],
  });
}

describe('firn infer / proof verify / artifact', () => {
  let jobId: `0x${string}`;
  it('infer matches plain onnxruntime within 1e-5 and writes a proof that `proof verify` accepts', async () => {
    const modelPath = join(dir, 'model.onnx');
    const inputPath = join(dir, 'input.json');
    writeFileSync(modelPath, twoHeadModel());
    const input = {
      a: { dims: [2, 5], type: 'float32', data: [0.1, -0.2, 0.3, 1.5, -2, 3, 2, 1, 0, -1] },
      bias: { dims: [3], type: 'float32', data: [0.5, -0.5, 0.25] },
      scale: { dims: [2, 3], type: 'float32', data: [1, 2, 3, -1, -2, -3] },
    };
    writeFileSync(inputPath, JSON.stringify(input));
    const before = new Set(filesUnder(net.dataDir));
    const r = await inferCommand({
      model: modelPath,
      input: inputPath,
      out: join(dir, 'result.json'),
      proof: join(dir, 'proof.json'),
      devnet: stateFile,
      escrow: '0.01',
    });
    jobId = r.jobId;
    expect(r.proofOk).toBe(true);
    // What the host stores: the model and the input sealed at their Padmé buckets (decision 1855),
    // never at sizes that give the model's or the input file's exact length.
    const kem = await generateKemKeyPair();
    const sealedSize = async (bytes: Uint8Array, type: string, pad: boolean) =>
      (
        await sealInput(
          pad ? padPlaintext(bytes) : bytes,
          pad ? paddedContentType(type) : type,
          kem.publicKey,
        )
      ).sealed.length;
    const stored = filesUnder(net.dataDir)
      .filter((f) => !before.has(f))
      .map((f) => statSync(f).size);
    const model = twoHeadModel();
    const inputBytes = new Uint8Array(readFileSync(inputPath));
    expect(stored).toContain(await sealedSize(model, 'application/onnx', true));
    expect(stored).toContain(await sealedSize(inputBytes, 'application/json', true));
    expect(stored).not.toContain(await sealedSize(model, 'application/onnx', false));
    expect(stored).not.toContain(await sealedSize(inputBytes, 'application/json', false));
    const plain = await (await loadOnnxModel(twoHeadModel())).run(parseTensorMap(JSON.stringify(input)));
    const got = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8'));
    for (const name of ['scaled', 's']) {
      expect(got[name].dims).toEqual([2, 3]);
      const want = Array.from(plain[name]!.data as Float32Array);
      got[name].data.forEach((v: number, i: number) => {
        expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(1e-5);
      });
    }
    const v = await proofVerifyCommand(join(dir, 'proof.json'), {
      rpc: net.anvil.rpcUrl,
      market: net.deployment.jobMarket,
    });
    expect(v.reasons).toEqual([]);
    expect(v.ok).toBe(true);
  });

  it('proof verify refuses an altered proof', async () => {
    const p = JSON.parse(readFileSync(join(dir, 'proof.json'), 'utf8'));
    p.proof.workUnits = String(BigInt(p.proof.workUnits) + 1n);
    writeFileSync(join(dir, 'bad-proof.json'), JSON.stringify(p));
    const v = await proofVerifyCommand(join(dir, 'bad-proof.json'), { rpc: net.anvil.rpcUrl });
    expect(v.ok).toBe(false);
    expect(v.reasons).toContain('signer is not the registered enclave address');
  });

  it('both verifier daemons re-checked the proof and found it valid', async () => {
    const until = Date.now() + 10_000;
    while (
      net.verifiers.some((v) => !v.proofs?.verdicts.some((x) => x.jobId === jobId)) &&
      Date.now() < until
    )
      await new Promise((r) => setTimeout(r, 100));
    for (const v of net.verifiers)
      expect(v.proofs?.verdicts.find((x) => x.jobId === jobId)).toMatchObject({ ok: true, disputed: false });
  });

  it('artifact keygen, seal and open round-trip', async () => {
    const k = await artifactKeygen({ out: join(dir, 'kem.json') });
    writeFileSync(join(dir, 'plain.bin'), 'hello sealed world');
    const s = await artifactSeal({
      in: join(dir, 'plain.bin'),
      out: join(dir, 'sealed.bin'),
      recipients: [k.publicKey],
      contentType: 'text/plain',
    });
    expect(readFileSync(join(dir, 'sealed.bin')).includes('hello sealed world')).toBe(false);
    const o = await artifactOpen({
      in: join(dir, 'sealed.bin'),
      out: join(dir, 'opened.bin'),
      keyFile: join(dir, 'kem.json'),
    });
    expect(o).toMatchObject({ id: s.id, contentType: 'text/plain' });
    expect(readFileSync(join(dir, 'opened.bin'), 'utf8')).toBe('hello sealed world');
    // --pad: two plaintexts of different sizes in one bucket seal to the same size and open exactly.
    const sizes: number[] = [];
    for (const [name, n] of [
      ['p1', 5000],
      ['p2', 5100],
    ] as const) {
      writeFileSync(join(dir, `${name}.bin`), Buffer.alloc(n, 3));
      const ps = await artifactSeal({
        in: join(dir, `${name}.bin`),
        out: join(dir, `${name}.sealed`),
        recipients: [k.publicKey],
        contentType: 'text/plain',
        pad: true,
      });
      sizes.push(ps.size);
      const po = await artifactOpen({
        in: join(dir, `${name}.sealed`),
        out: join(dir, `${name}.opened`),
        keyFile: join(dir, 'kem.json'),
      });
      expect(po).toMatchObject({ contentType: 'text/plain', size: n });
      expect(readFileSync(join(dir, `${name}.opened`)).equals(Buffer.alloc(n, 3))).toBe(true);
    }
    expect(sizes[0]).toBe(sizes[1]);
  });

  it('infer writes nothing when the proof the host hands back does not verify', async () => {
    // The attack: a host that alters the Work Proof in GET /v1/jobs/{id}/result. The CLI must
    // fail with E_PROOF_INVALID and leave neither the output nor the proof file (nor a temp file).
    const realFetch = globalThis.fetch;
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      const res = await realFetch(url, init);
      if (!String(url).endsWith('/result') || !res.ok) return res;
      const body = (await res.json()) as { proof: { proof: { workUnits: string } } };
      body.proof.proof.workUnits = String(BigInt(body.proof.proof.workUnits) + 1n);
      return new Response(JSON.stringify(body), { status: 200, headers: res.headers });
    }) as typeof fetch;
    const outDir = mkdtempSync(join(tmpdir(), 'firn-cli-noproof-'));
    let err: unknown;
    try {
      await inferCommand({
        model: join(dir, 'model.onnx'),
        input: join(dir, 'input.json'),
        out: join(outDir, 'result.json'),
        proof: join(outDir, 'proof.json'),
        devnet: stateFile,
        escrow: '0.001',
      });
    } catch (e) {
      err = e;
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(err).toMatchObject({ code: 'E_PROOF_INVALID' });
    expect(readdirSync(outDir)).toEqual([]);
  });

  it('the devnet demo runs a job, verifies its proof and pays the operator the escrow', async () => {
    const lines: string[] = [];
    const r = await runInferenceDemo(stateOf(net, net.rootPem), (l) => lines.push(l));
    expect(r.proofOk).toBe(true);
    expect(r.operatorCreditWei).toBe(r.payoutWei);
    expect(lines.some((l) => l.includes('decrypted result'))).toBe(true);
    expect(demoModel().length).toBeGreaterThan(100);
  });

  it('after the revocation, `firn infer --devnet S` exits non-zero with E_POLICY_REJECTED and uploads nothing', async () => {
    // Governance revokes the nodes' measurement through the timelock.
    await governBundleMeasurement(net, 'revoke');
    const artifactsDir = join(net.dataDir, 'artifacts');
    const before = readdirSync(artifactsDir).sort();
    const outDir = mkdtempSync(join(tmpdir(), 'firn-cli-revoked-'));
    const r = spawnSync(
      process.execPath,
      [
        join(process.cwd(), 'packages/cli/bin/firn.mjs'),
        'infer',
        '--devnet',
        stateFile,
        '--model',
        join(dir, 'model.onnx'),
        '--input',
        join(dir, 'input.json'),
        '--out',
        join(outDir, 'result.json'),
        '--proof',
        join(outDir, 'proof.json'),
        '--json',
      ],
      { encoding: 'utf8', timeout: 50_000 },
    );
    expect(r.status).not.toBe(0);
    expect(JSON.parse(r.stdout).error.code).toBe('E_POLICY_REJECTED');
    expect(JSON.parse(r.stdout).error.message).toContain(net.bundleMeasurement.toLowerCase());
    expect(readdirSync(artifactsDir).sort()).toEqual(before);
    expect(readdirSync(outDir)).toEqual([]);
    // Allowed again, the same command runs (the next test revokes it for a dispute).
    await governBundleMeasurement(net, 'allow');
  });

  /** A fresh proved job (the demo finalizes, so run a plain infer) and its submitProof tx. */
  async function provedJob(name: string) {
    const res = await inferCommand({
      model: join(dir, 'model.onnx'),
      input: join(dir, 'input.json'),
      out: join(dir, `${name}.json`),
      proof: join(dir, `${name}-proof.json`),
      devnet: stateFile,
      escrow: '0.001',
    });
    const txHash = (
      (await new NodeApi(net.node.url).getJob(res.jobId)) as { txs?: { proof?: `0x${string}` } }
    ).txs?.proof;
    expect(txHash).toMatch(/^0x/);
    return { jobId: res.jobId, txHash: txHash! };
  }
  const checkerOf = (k: number) =>
    new ProofChecker(
      createFirnClients(net.anvil.rpcUrl, net.anvil.accounts[k]!.privateKey, net.deployment, {
        pollingIntervalMs: 50,
      }),
      // A bound no real job meets: every proof is an implausible-work finding (reason 18).
      { maxWorkUnitsPerSecond: 0n, result: { allowPrivateEndpoints: true } },
    );

  it('a proof valid at submission is never disputed, even after its measurement is revoked', async () => {
    for (const d of net.verifiers) d.proofs?.stop();
    const { jobId, txHash } = await provedJob('r3');
    const gov = await governBundleMeasurement(net, 'revoke');
    expect(await checkSubmittedProof(gov, jobId, txHash)).toMatchObject({ ok: true, reasons: [] });
    for (const k of [2, 3]) {
      const checker = new ProofChecker(
        createFirnClients(net.anvil.rpcUrl, net.anvil.accounts[k]!.privateKey, net.deployment, {
          pollingIntervalMs: 50,
        }),
        // The test network's node listens on 127.0.0.1.
        { result: { allowPrivateEndpoints: true } },
      );
      expect(await checker.handle(jobId, txHash)).toMatchObject({ ok: true, disputed: false });
    }
    expect((await getJob(gov, jobId)).disputeStake).toBe(0n);
    // The window passes and the node is paid, although its measurement is no longer allowed.
    await increaseTime(net.anvil.rpcUrl, 61);
    await finalizeJob(gov, jobId);
    expect((await getJob(gov, jobId)).status).toBe(JobStatus.Paid);
    // Allowed again for the next test.
    await governBundleMeasurement(net, 'allow');
  });

  it('verifiers dispute a proof they find invalid; more than 2/3 of the stake slashes it', async () => {
    // The daemons' own watchers are stopped so that the two votes below are deterministic.
    for (const d of net.verifiers) d.proofs?.stop();
    const { jobId, txHash } = await provedJob('r2');
    const gov = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    for (const [i, k] of [2, 3].entries()) {
      expect(await checkerOf(k).handle(jobId, txHash)).toMatchObject({
        ok: false,
        disputed: true,
        reasonCode: 18,
      });
      // One of two equal stakes is not more than 2/3: still Proved after the first vote.
      const job = await getJob(gov, jobId);
      expect(job.disputeStake).toBe(BigInt(i + 1) * 10n ** 18n);
      expect(job.status).toBe(i === 0 ? JobStatus.Proved : JobStatus.Slashed);
      // Inside the window with a finding that has not passed, `firn job finalize` sends and the
      // market refuses: reported as the open window, not as a raw revert (decision 1776).
      if (i === 0)
        await expect(jobFinalize(await resolveChain({ devnet: stateFile }), jobId)).rejects.toMatchObject({
          code: 'E_CONFLICT',
          message: expect.stringContaining('the finding against it has not passed'),
        });
    }
  });
});
