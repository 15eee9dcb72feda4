import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AnvilInstance,
  claimJob,
  createFirnClients,
  type FirnClients,
  type FirnDeployment,
  firnJobMarketAbi,
  getJob,
  JobStatus,
  startAnvil,
  submitProof,
  type WorkProof,
  workProofTypedData,
} from '@firn/chain';
import { type JobPostedAt, type SealedInput, sealInput } from '@firn/client';
import { computeOutputCommitment, type FirnError, type Hex, workProofToJson } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployJobFirn, postOpenJob, registerApprovedNode } from '../../test/jobChain.ts';
import { findJobRecord, jobChainFacts, recordJob } from '../jobJournal.ts';
import { newResultKem, type ResultKemRecord } from '../resultKem.ts';
import { jobReclaim, jobResult, jobStatus } from './job.ts';

// Decision 1541: `firn job status` advice and `firn job reclaim`'s pre-check judge a claim's lapse
// on chain time, never on the host clock. Here the chain runs 30 minutes behind the host (as a
// host whose clock is ahead sees it): a claim of 120 s has lapsed by the host clock the moment it
// is made, but not on the chain, where the contract would revert a reclaim (ClaimNotLapsed).
const ETH = 10n ** 18n;
const SKEW = 1800;
const CLAIM_TIMEOUT = 120n;
const dir = mkdtempSync(join(tmpdir(), 'firn-job-'));
let anvil: AnvilInstance;
let deployment: FirnDeployment;
const at = (i: number): FirnClients =>
  createFirnClients(anvil.rpcUrl, anvil.accounts[i]!.privateKey, deployment, { pollingIntervalMs: 50 });
const rpc = async (method: string, params: unknown[]) => {
  const r = await fetch(anvil.rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const j = (await r.json()) as { error?: { message: string } };
  if (j.error) throw new Error(`${method}: ${j.error.message}`);
};

/** The node's job API as far as `firn job result` asks it: results by job id (lower-case hex). */
const results = new Map<string, unknown>();
/** Sealed artifacts the node serves by id (lower-case hex), and every artifact request it got. */
const artifacts = new Map<string, Uint8Array>();
const artifactRequests: string[] = [];
let node: Server;

beforeAll(async () => {
  node = createServer((req, res) => {
    const a = /^\/v1\/artifacts\/(0x[0-9a-fA-F]{64})$/.exec(req.url ?? '');
    if (a) {
      artifactRequests.push(a[1]!.toLowerCase());
      const bytes = artifacts.get(a[1]!.toLowerCase());
      res.writeHead(bytes ? 200 : 404, {
        'content-type': bytes ? 'application/octet-stream' : 'application/json',
      });
      res.end(bytes ?? JSON.stringify({ error: { code: 'E_NOT_FOUND', message: 'no artifact' } }));
      return;
    }
    const m = /^\/v1\/jobs\/(0x[0-9a-f]{64})\/result$/.exec(req.url ?? '');
    const r = m ? results.get(m[1]!) : undefined;
    res.writeHead(r ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(r ?? { error: { code: 'E_NOT_FOUND', message: 'no result' } }));
  });
  await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
  anvil = await startAnvil({ accounts: 6 });
  await rpc('anvil_setTime', [Math.floor(Date.now() / 1000) - SKEW]);
  await rpc('evm_mine', []);
  const measurement = keccak256(toHex('job-cli-bundle'));
  deployment = await deployJobFirn(anvil, measurement);
  await registerApprovedNode(anvil, at, {
    enclaveId: keccak256(toHex('job-cli-enclave')),
    measurement,
    endpoint: `http://127.0.0.1:${(node.address() as AddressInfo).port}`,
    tag: 'job-cli',
  });
  writeFileSync(join(dir, 'requester.key'), anvil.accounts[2]!.privateKey, { mode: 0o600 });
}, 60_000);
afterAll(async () => {
  node?.close();
  await anvil?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A job posted by account 2 and claimed by the node of account 1, with a 120 s claim timeout. */
async function claimedJob(): Promise<Hex> {
  const jobId = await postOpenJob(at(2), CLAIM_TIMEOUT);
  await claimJob(at(1), { jobId, enclaveId: keccak256(toHex('job-cli-enclave')) });
  return jobId;
}

describe('firn job on a host clock 30 minutes ahead of the chain', () => {
  it('does not advise a reclaim before the claim lapses on the chain', async () => {
    const jobId = await claimedJob();
    const chain = { rpcUrl: anvil.rpcUrl, deployment };
    const j = await getJob(at(2), jobId);
    // By the host clock the claim lapsed half an hour ago.
    expect(BigInt(Math.floor(Date.now() / 1000))).toBeGreaterThan(j.claimedAt + j.claimTimeout + 1000n);

    const status = await jobStatus(chain, jobId);
    expect(status.advice).toMatch(/^running on 0x[0-9a-f]{64}; the claim lapses at /);
    expect(status.advice).not.toMatch(/lapsed|reclaim/);
  }, 60_000);

  it('does not send a reclaim (nor a block-making transfer) before the claim lapses on the chain', async () => {
    const jobId = await claimedJob();
    const chain = { rpcUrl: anvil.rpcUrl, deployment };
    const requester = anvil.accounts[2]!.address;
    const nonce = await at(2).public.getTransactionCount({ address: requester });
    const err = (await jobReclaim(chain, jobId, join(dir, 'requester.key')).then(
      () => undefined,
      (e: unknown) => e,
    )) as FirnError | undefined;
    expect(err?.code).toBe('E_CONFLICT');
    expect(err?.message).toMatch(/cannot be reclaimed: running on/);
    // Nothing was sent: no reclaim, and no block-making transfer either.
    expect(await at(2).public.getTransactionCount({ address: requester })).toBe(nonce);
    expect((await getJob(at(2), jobId)).status).toBe(JobStatus.Claimed);
  }, 60_000);

  it('once the claim lapses on the chain (no block mined since), advises and performs the reclaim', async () => {
    const jobId = await claimedJob();
    const chain = { rpcUrl: anvil.rpcUrl, deployment };
    // The chain's clock moves past the lapse, but no block is mined: the latest block still shows
    // the claim running; the next block (the one a reclaim lands in) does not.
    await rpc('evm_increaseTime', [Number(CLAIM_TIMEOUT) + 10]);
    const j = await getJob(at(2), jobId);
    expect((await at(2).public.getBlock()).timestamp).toBeLessThanOrEqual(j.claimedAt + j.claimTimeout);

    expect((await jobStatus(chain, jobId)).advice).toMatch(/^the claim lapsed: `firn job reclaim`/);
    const market = { address: deployment.jobMarket, abi: firnJobMarketAbi } as const;
    const treasury = (await at(2).public.readContract({ ...market, functionName: 'owner' })) as Hex;
    const treasuryCredit = async () =>
      (await at(2).public.readContract({
        ...market,
        functionName: 'withdrawable',
        args: [treasury],
      })) as bigint;
    const treasuryBefore = await treasuryCredit();
    const r = await jobReclaim(chain, jobId, join(dir, 'requester.key'));
    expect(r.status).toBe('Reclaimed');
    // The escrow only: the lapsed claim's bond went to the governance treasury (decision 1625).
    expect(r.refundedWei).toBe(ETH.toString());
    expect(await treasuryCredit()).toBe(treasuryBefore + ETH / 10n);
    expect((await getJob(at(2), jobId)).status).toBe(JobStatus.Reclaimed);
  }, 60_000);
});

describe('firn job result', () => {
  it('writes the opened outputs and the verified proof, and nothing else, into --out', async () => {
    const kem = await generateKemKeyPair();
    const plaintext = new TextEncoder().encode('the answer, in plaintext');
    const out = await sealInput(plaintext, 'application/octet-stream', kem.publicKey);
    const { jobId, proofJson } = await provedJob([{ role: 'y', artifactId: out.artifactId }]);
    fakeNode(jobId, proofJson, [
      {
        ...listed(out),
        contentType: 'application/octet-stream',
        sealed: Buffer.from(out.sealed).toString('base64'),
      },
    ]);
    const kemFile = join(dir, 'kem.json');
    writeFileSync(kemFile, JSON.stringify({ privateKey: toHex(kem.privateKey) }), { mode: 0o600 });
    const outDir = join(dir, 'result');
    const r = await jobResult({ rpcUrl: anvil.rpcUrl, deployment }, jobId, { out: outDir, kemKey: kemFile });
    expect(r).toMatchObject({ jobId, files: ['y', 'proof.json'], opened: true });
    expect(readdirSync(outDir).sort()).toEqual(['proof.json', 'y']);
    expect(new Uint8Array(readFileSync(join(outDir, 'y')))).toEqual(plaintext);
    expect(JSON.parse(readFileSync(join(outDir, 'proof.json'), 'utf8'))).toMatchObject({ proof: { jobId } });
  }, 60_000);
});

/** Where `jobId` was posted on the test chain (its JobPosted event): what `firn infer` records. */
async function postedAt(jobId: Hex) {
  const [ev] = await at(2).public.getContractEvents({
    address: deployment.jobMarket,
    abi: firnJobMarketAbi,
    eventName: 'JobPosted',
    args: { jobId },
    fromBlock: 0n,
  });
  return { txHash: ev!.transactionHash, blockNumber: ev!.blockNumber, blockHash: ev!.blockHash };
}

describe('firn job result with a journal entry (decisions 1630, 1650)', () => {
  /**
   * Journal `jobId` as `firn infer` does without --kem-key: the result key's salt and public key
   * (`record`), the requester's key file, and `posted` as where it was posted (none: an entry
   * written before decision 1650).
   */
  const journal = (jobId: Hex, record: ResultKemRecord, posted?: JobPostedAt) =>
    recordJob({
      jobId,
      command: 'infer',
      options: { keyFile: join(dir, 'requester.key') },
      postedAt: 1,
      ...record,
      ...(posted ? { chain: jobChainFacts(deployment, anvil.accounts[2]!.address, posted) } : {}),
    });

  it("an entry bound to this chain's post opens the outputs with the key derived again", async () => {
    const { kem, record } = newResultKem(anvil.accounts[2]!.privateKey);
    const plaintext = new TextEncoder().encode('derived-key answer');
    const o = await sealInput(plaintext, 'application/octet-stream', kem.publicKey);
    const { jobId, proofJson } = await provedJob([{ role: 'y', artifactId: o.artifactId }]);
    fakeNode(jobId, proofJson, [listed(o)], [[o.artifactId, o.sealed]]);
    journal(jobId, record, await postedAt(jobId));
    const out = join(dir, 'journal-bound');
    const r = await jobResult({ rpcUrl: anvil.rpcUrl, deployment }, jobId, { out });
    expect(r).toMatchObject({ opened: true, files: ['y', 'proof.json'] });
    expect(r).not.toHaveProperty('journal');
    expect(new Uint8Array(readFileSync(join(out, 'y')))).toEqual(plaintext);
  }, 60_000);

  it("attack: an earlier chain's entry for the same job id is not used; the outputs are written sealed and the entry named", async () => {
    // The job on this chain was run with a key this machine never recorded (another process, or
    // --kem-key); the journal holds an entry a restarted devnet's earlier job of the same id left:
    // same chain id, market and requester, its own post block.
    const other = await generateKemKeyPair();
    const o = await sealInput(new TextEncoder().encode('not yours to open here'), 'x', other.publicKey);
    const { jobId, proofJson } = await provedJob([{ role: 'y', artifactId: o.artifactId }]);
    fakeNode(jobId, proofJson, [listed(o)], [[o.artifactId, o.sealed]]);
    const here = await postedAt(jobId);
    const { record } = newResultKem(anvil.accounts[2]!.privateKey);
    journal(jobId, record, {
      txHash: keccak256(toHex('earlier chain post')),
      blockNumber: here.blockNumber,
      blockHash: keccak256(toHex('earlier chain block')),
    });
    const out = join(dir, 'journal-stale');
    const r = await jobResult({ rpcUrl: anvil.rpcUrl, deployment }, jobId, { out });
    expect(r).toMatchObject({ opened: false, files: ['y.sealed', 'proof.json'] });
    expect(r.journal).toMatch(/earlier chain's job with the same id.*it was not used/);
    expect(new Uint8Array(readFileSync(join(out, 'y.sealed')))).toEqual(o.sealed);
  }, 60_000);

  it('an entry from before chain facts were recorded is not used either, and says so', async () => {
    const o = await sealedOutput('legacy');
    const { jobId, proofJson } = await provedJob([{ role: 'y', artifactId: o.artifactId }]);
    fakeNode(jobId, proofJson, [listed(o)], [[o.artifactId, o.sealed]]);
    const { record } = newResultKem(anvil.accounts[2]!.privateKey);
    journal(jobId, record);
    const r = await jobResult({ rpcUrl: anvil.rpcUrl, deployment }, jobId, { out: join(dir, 'journal-old') });
    expect(r).toMatchObject({ opened: false });
    expect(r.journal).toMatch(/names no chain it was posted on/);
  }, 60_000);
});

/**
 * A job proved on chain with a Work Proof signed by the registered enclave key that commits to
 * `committed` (role, artifact id) in order; returns the job id and the proof as the node relays it.
 */
async function provedJob(committed: { role: string; artifactId: Hex }[]) {
  const jobId = await claimedJob();
  const j = await getJob(at(2), jobId);
  const proof: WorkProof = {
    jobId,
    enclaveId: j.enclaveId,
    measurement: keccak256(toHex('job-cli-bundle')),
    workloadHash: j.workloadHash,
    inputCommitment: j.inputCommitment,
    outputCommitment: computeOutputCommitment(committed),
    startedAt: j.claimedAt,
    finishedAt: j.claimedAt + 1n,
    workUnits: 1n,
  };
  const domain = { chainId: deployment.chainId, verifyingContract: deployment.jobMarket };
  const enclave = privateKeyToAccount(anvil.accounts[5]!.privateKey);
  const signature = await enclave.signTypedData(workProofTypedData(domain, proof));
  await submitProof(at(1), { jobId, proof, signature });
  const proofJson = workProofToJson(
    proof,
    signature,
    { chainId: deployment.chainId, jobMarket: deployment.jobMarket },
    enclave.address,
  );
  return { jobId, proofJson };
}

/**
 * What the fake node lists for the sealed output `o` under `role`: its artifact id at its sealed
 * size (bytes), content type 'x'.
 */
function listed(o: SealedInput, role = 'y') {
  return { role, artifactId: o.artifactId, contentType: 'x', size: o.sealed.length };
}

/**
 * Sets the fake node up for one case: it answers `jobId`'s result with the proof `proofJson` (as
 * provedJob relays it), an empty response and `outputs` listed as given (any shape: a hostile
 * node's listing), serves each of `served` (artifact id, bytes) at /v1/artifacts/{id}, and forgets
 * the artifact requests earlier cases made.
 */
function fakeNode(jobId: Hex, proofJson: unknown, outputs: unknown, served: [Hex, Uint8Array][] = []): void {
  for (const [id, bytes] of served) artifacts.set(id.toLowerCase(), bytes);
  results.set(jobId.toLowerCase(), { jobId, proof: proofJson, response: '', outputs });
  artifactRequests.length = 0;
}

/** A sealed output the node lists (not inline: `firn job result` must download it). */
async function sealedOutput(text: string) {
  const kem = await generateKemKeyPair();
  return sealInput(new TextEncoder().encode(text), 'application/octet-stream', kem.publicKey);
}

/** Run `firn job result` and return its error (undefined when it succeeded). */
async function resultError(jobId: Hex, out: string): Promise<FirnError | undefined> {
  return (await jobResult({ rpcUrl: anvil.rpcUrl, deployment }, jobId, { out }).then(
    () => undefined,
    (e: unknown) => e,
  )) as FirnError | undefined;
}

describe('firn job result against a hostile node', () => {
  const endpoint = () => `http://127.0.0.1:${(node.address() as AddressInfo).port}`;

  it('a non-string artifactId is E_PARSE naming the node and the field; nothing fetched or written', async () => {
    const o = await sealedOutput('a');
    const { jobId, proofJson } = await provedJob([{ role: 'y', artifactId: o.artifactId }]);
    fakeNode(jobId, proofJson, [
      { ...listed(o), artifactId: 5, contentType: 'application/octet-stream', size: 10 },
    ]);
    const out = join(dir, 'hostile-artifact-id');
    const err = await resultError(jobId, out);
    expect(err?.code).toBe('E_PARSE');
    expect(err?.message).toContain(endpoint());
    expect(err?.details).toMatchObject({ endpoint: endpoint(), field: 'outputs.0.artifactId' });
    expect(err).not.toBeInstanceOf(TypeError);
    expect(artifactRequests).toEqual([]);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('missing fields and wrong types are E_PARSE naming each field', async () => {
    const o = await sealedOutput('b');
    const { jobId, proofJson } = await provedJob([{ role: 'y', artifactId: o.artifactId }]);
    const ref = listed(o);
    const cases: [unknown, string][] = [
      [{ jobId, proof: proofJson, response: '' }, 'outputs'],
      [{ jobId, proof: proofJson, response: '', outputs: 'y' }, 'outputs'],
      [{ jobId, response: '', outputs: [ref] }, 'proof'],
      [{ jobId, proof: { ...proofJson, chainId: '1' }, response: '', outputs: [ref] }, 'proof.chainId'],
      [{ jobId, proof: proofJson, response: '', outputs: [{ ...ref, size: -1 }] }, 'outputs.0.size'],
      [{ jobId, proof: proofJson, response: '', outputs: [{ ...ref, size: 2 ** 40 }] }, 'outputs.0.size'],
      [{ jobId, proof: proofJson, response: '', outputs: [{ ...ref, role: ['y'] }] }, 'outputs.0.role'],
      [{ jobId, proof: proofJson, response: 7, outputs: [ref] }, 'response'],
      [[], '(body)'],
    ];
    for (const [body, field] of cases) {
      results.set(jobId, body);
      artifactRequests.length = 0;
      const out = join(dir, `hostile-shape-${field}`);
      const err = await resultError(jobId, out);
      expect({ field, code: err?.code, got: err?.details?.['field'] }).toEqual({
        field,
        code: 'E_PARSE',
        got: field,
      });
      expect(err?.message).toContain(endpoint());
      expect(artifactRequests).toEqual([]);
      expect(existsSync(out)).toBe(false);
    }
  }, 60_000);

  it('10,000 listed outputs are refused at the enclave bound of 16 before any download', async () => {
    const o = await sealedOutput('c');
    const { jobId, proofJson } = await provedJob([{ role: 'y', artifactId: o.artifactId }]);
    fakeNode(jobId, proofJson, Array(10_000).fill(listed(o)), [[o.artifactId, o.sealed]]);
    const out = join(dir, 'hostile-many');
    const err = await resultError(jobId, out);
    expect(err?.code).toBe('E_PARSE');
    expect(err?.details).toMatchObject({ field: 'outputs' });
    expect(err?.message).toMatch(/at most 16 outputs/);
    expect(artifactRequests).toEqual([]);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('17 listed outputs of a valid shape are refused too (one past the bound)', async () => {
    const outs = await Promise.all(Array.from({ length: 17 }, (_, i) => sealedOutput(`o${i}`)));
    const { jobId, proofJson } = await provedJob(
      outs.map((o, i) => ({ role: `r${i}`, artifactId: o.artifactId })),
    );
    fakeNode(
      jobId,
      proofJson,
      outs.map((o, i) => listed(o, `r${i}`)),
    );
    const err = await resultError(jobId, join(dir, 'hostile-17'));
    expect(err?.code).toBe('E_PARSE');
    expect(artifactRequests).toEqual([]);
  }, 60_000);

  it('a role the proof does not commit to is E_PROOF_INVALID; nothing downloaded or written', async () => {
    const o = await sealedOutput('d');
    const { jobId, proofJson } = await provedJob([{ role: 'y', artifactId: o.artifactId }]);
    fakeNode(jobId, proofJson, [listed(o, 'z')], [[o.artifactId, o.sealed]]);
    const out = join(dir, 'hostile-role');
    const err = await resultError(jobId, out);
    expect(err?.code).toBe('E_PROOF_INVALID');
    expect(err?.message).toContain(endpoint());
    expect(err?.message).toMatch(/outputCommitment differs/);
    expect(artifactRequests).toEqual([]);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('a valid proof for other outputs than the listed ones is E_PROOF_INVALID; the listed ones are never fetched', async () => {
    const committed = await sealedOutput('the real output');
    const other = await sealedOutput('what the host wants fetched');
    const { jobId, proofJson } = await provedJob([{ role: 'y', artifactId: committed.artifactId }]);
    fakeNode(jobId, proofJson, [listed(other)], [[other.artifactId, other.sealed]]);
    const out = join(dir, 'hostile-other');
    const err = await resultError(jobId, out);
    expect(err?.code).toBe('E_PROOF_INVALID');
    expect(artifactRequests).toEqual([]);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('an output served longer than its listed size is cut off at that size (E_TOO_LARGE); nothing written', async () => {
    const o = await sealedOutput('e');
    const { jobId, proofJson } = await provedJob([{ role: 'y', artifactId: o.artifactId }]);
    // The committed artifact followed by 4 MiB the host appends.
    const longer = new Uint8Array(Buffer.concat([o.sealed, Buffer.alloc(4 << 20, 1)]));
    fakeNode(jobId, proofJson, [listed(o)], [[o.artifactId, longer]]);
    const out = join(dir, 'hostile-long');
    const err = await resultError(jobId, out);
    expect(err?.code).toBe('E_TOO_LARGE');
    // What the requester can do about it, not only what the node did (decision 1651).
    expect(err?.message).toContain('Nothing was written');
    expect(err?.message).toContain('the only bound there is');
    expect(err?.message).toContain(`firn job status ${jobId}`);
    expect(err?.message).toContain(`firn job reclaim ${jobId}`);
    expect(err?.details).toMatchObject({ endpoint: endpoint(), role: 'y', limit: o.sealed.length });
    expect(artifactRequests).toEqual([o.artifactId]);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('an output whose bytes are not its committed id is E_ARTIFACT_TAMPERED; nothing written', async () => {
    const o = await sealedOutput('f');
    const { jobId, proofJson } = await provedJob([{ role: 'y', artifactId: o.artifactId }]);
    const flipped = o.sealed.slice();
    flipped[flipped.length - 1]! ^= 1;
    fakeNode(jobId, proofJson, [listed(o)], [[o.artifactId, flipped]]);
    const out = join(dir, 'hostile-flipped');
    const err = await resultError(jobId, out);
    expect(err?.code).toBe('E_ARTIFACT_TAMPERED');
    expect(err?.message).toContain(`firn job reclaim ${jobId}`);
    expect(err?.details).toMatchObject({ endpoint: endpoint(), role: 'y' });
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('a committed output listed twice under one role is refused before any download (one file name each)', async () => {
    const o = await sealedOutput('g');
    const twice = [
      { role: 'y', artifactId: o.artifactId },
      { role: 'y', artifactId: o.artifactId },
    ];
    const { jobId, proofJson } = await provedJob(twice);
    fakeNode(jobId, proofJson, [listed(o), listed(o)], [[o.artifactId, o.sealed]]);
    const out = join(dir, 'hostile-twice');
    const err = await resultError(jobId, out);
    expect(err?.code).toBe('E_PARSE');
    expect(err?.details).toMatchObject({ field: 'outputs.1.role' });
    expect(artifactRequests).toEqual([]);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('an honest node: the committed output is downloaded once, at its size, and written sealed', async () => {
    const o = await sealedOutput('h');
    const { jobId, proofJson } = await provedJob([{ role: 'y', artifactId: o.artifactId }]);
    fakeNode(jobId, proofJson, [listed(o)], [[o.artifactId, o.sealed]]);
    const out = join(dir, 'honest-download');
    const r = await jobResult({ rpcUrl: anvil.rpcUrl, deployment }, jobId, { out });
    expect(r.files).toEqual(['y.sealed', 'proof.json']);
    expect(artifactRequests).toEqual([o.artifactId]);
    expect(new Uint8Array(readFileSync(join(out, 'y.sealed')))).toEqual(o.sealed);
  }, 60_000);
});

describe("firn job status with this machine's post still in the pool (decision 1760)", () => {
  it('names the waiting post instead of only "does not exist", then gives the job and completes its entry once mined', async () => {
    const requester = at(2);
    const block = await requester.public.getBlock();
    const request = {
      teeTypeMask: 1 << 1,
      allowedMeasurements: [],
      enclaveIds: [],
      workloadHash: keccak256(toHex('pending-model')),
      inputCommitment: keccak256(toHex('pending-inputs')),
      deadline: block.timestamp + 3600n,
      claimTimeout: 600n,
      maxWorkUnits: 0n,
    };
    const sim = await requester.public.simulateContract({
      account: requester.wallet!.account!,
      address: deployment.jobMarket,
      abi: firnJobMarketAbi,
      functionName: 'postJob',
      args: [request],
      value: ETH,
    });
    const jobId = sim.result as Hex;
    await rpc('evm_setAutomine', [false]);
    let hash: Hex;
    try {
      // Sent, as `firn infer` sends it, and on record as pending; its answer is not awaited.
      hash = await requester.wallet!.writeContract(sim.request);
      recordJob({
        jobId,
        command: 'infer',
        options: {},
        postedAt: 1,
        postTx: hash,
        postTxs: [hash],
        sentOn: {
          chainId: deployment.chainId,
          jobMarket: deployment.jobMarket,
          requester: anvil.accounts[2]!.address,
        },
      });
      const told = await jobStatus({ rpcUrl: anvil.rpcUrl, deployment }, jobId).catch((e: unknown) => e);
      expect(told).toMatchObject({ code: 'E_NOT_FOUND' });
      expect((told as Error).message).toContain(
        `this machine's postJob transaction ${hash} (job ${jobId} expected) still waits in the pool`,
      );
      expect(findJobRecord(jobId)?.postTx, 'a waiting post keeps its entry').toBe(hash);
    } finally {
      await rpc('evm_setAutomine', [true]);
    }
    await rpc('evm_mine', []);
    const status = await jobStatus({ rpcUrl: anvil.rpcUrl, deployment }, jobId);
    expect(status).toMatchObject({ jobId, status: 'Open' });
    // The entry is the job's now, bound to the post that was mined.
    const rec = findJobRecord(jobId);
    expect(rec?.postTx).toBeUndefined();
    expect(rec?.chain).toMatchObject({ postTx: hash, requester: anvil.accounts[2]!.address });
  }, 60_000);
});
