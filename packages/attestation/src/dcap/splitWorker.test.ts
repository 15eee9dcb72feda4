import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { makeSyntheticSgx, makeSyntheticTdx, type SyntheticDcap } from '../../test/dcap/syntheticDcap.ts';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import { collateralWorker, warmCollateralWorker } from './collateralWorkerClient.ts';
import { parseCrl } from './x509.ts';
import {
  clearDcapCaches,
  type VerifyDcapOptions,
  verifyDcapQuote,
  verifyDcapQuoteSync,
} from './verifyDcapQuote.ts';

/**
 * The split cold path (decision 1380): the collateral half on the collateral worker thread, the
 * quote half on the calling thread. Its verdicts and errors must be those of the calling thread's
 * path on every vector, case and attack, and a worker that dies or does not answer must fail the
 * call with a typed error, never let it pass.
 */

type Outcome =
  | { status: string; advisoryIds: string[]; extra: unknown; measurement: string }
  | { code: string; message: string };

async function outcome(quote: Uint8Array, opts: VerifyDcapOptions): Promise<Outcome> {
  clearDcapCaches();
  try {
    const f = await verifyDcapQuote(quote, opts);
    const measurement = Buffer.from(f.measurement).toString('hex');
    return { status: f.tcbStatus, advisoryIds: f.advisoryIds, extra: f.extra, measurement };
  } catch (e) {
    if (!isFirnError(e)) throw e;
    return { code: e.code, message: e.message };
  }
}

/** The outcome split, on the calling thread, on the pool and synchronously: all must agree. */
async function agreed(quote: Uint8Array, opts: VerifyDcapOptions): Promise<Outcome> {
  const split = await outcome(quote, { ...opts, signatureThreads: 'worker' });
  expect(await outcome(quote, { ...opts, signatureThreads: 'caller' })).toEqual(split);
  expect(await outcome(quote, { ...opts, signatureThreads: 'pool' })).toEqual(split);
  let sync: Outcome;
  clearDcapCaches();
  try {
    const f = verifyDcapQuoteSync(quote, opts);
    const measurement = Buffer.from(f.measurement).toString('hex');
    sync = { status: f.tcbStatus, advisoryIds: f.advisoryIds, extra: f.extra, measurement };
  } catch (e) {
    if (!isFirnError(e)) throw e;
    sync = { code: e.code, message: e.message };
  }
  expect(sync).toEqual(split);
  return split;
}

/** DER: a tag and its content, with a definite length. */
function tlv(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  const len =
    n < 0x80
      ? [n]
      : n < 0x100
        ? [0x81, n]
        : n < 0x10000
          ? [0x82, n >> 8, n & 255]
          : [0x83, n >> 16, (n >> 8) & 255, n & 255];
  return Buffer.concat([Buffer.from([tag, ...len]), content]);
}

/**
 * A well-formed CRL with `entries` revoked serials, issued in the name of the real SGX PCK CRL's
 * issuer, with a signature that does not verify (it is never reached in time in the test).
 */
function bigCrl(entries: number): Buffer {
  const real = parseCrl(Buffer.from(vectorJson(VECTORS.sgx.collateral).pck_crl as string, 'hex'));
  const alg = tlv(0x30, Buffer.from('06082a8648ce3d040302', 'hex'));
  const time = tlv(0x17, Buffer.from('250101000000Z'));
  const later = tlv(0x17, Buffer.from('350101000000Z'));
  const list: Uint8Array[] = [];
  for (let i = 0; i < entries; i++) {
    const serial = Buffer.alloc(16);
    serial[0] = 0x01;
    serial.writeUInt32BE(i, 12);
    list.push(tlv(0x30, Buffer.concat([tlv(0x02, serial), time])));
  }
  const tbs = tlv(
    0x30,
    Buffer.concat([
      tlv(0x02, Buffer.from([1])),
      alg,
      real.issuer,
      time,
      later,
      tlv(0x30, Buffer.concat(list)),
    ]),
  );
  const sig = tlv(0x03, Buffer.from('003006020101020101', 'hex'));
  return Buffer.from(tlv(0x30, Buffer.concat([tbs, alg, sig])));
}

const CASES = fileURLToPath(new URL('../../vectors/cases/', import.meta.url));
const synthRoots = (s: SyntheticDcap) => [new Uint8Array(Buffer.from(s.rootPem))];

describe('split verification gives the calling thread verdicts', () => {
  it('on every recorded vector (pinned Intel root and Intel sample roots)', async () => {
    for (const [name, v] of Object.entries(VECTORS)) {
      const opts: VerifyDcapOptions = { collateral: vectorJson(v.collateral), now: v.now };
      if ('root' in v) opts.roots = [vector(v.root)];
      const o = await agreed(vector(v.quote), opts);
      expect(o, name).toBeDefined();
    }
    const sgx = await agreed(vector(VECTORS.sgx.quote), {
      collateral: vectorJson(VECTORS.sgx.collateral),
      now: VECTORS.sgx.now,
    });
    expect(sgx).toMatchObject({ status: 'ConfigurationAndSWHardeningNeeded' });
  });

  it('on every shared case and each of its collaterals', async () => {
    for (const c of readdirSync(CASES, { withFileTypes: true }).filter((d) => d.isDirectory())) {
      const dir = `${CASES}${c.name}/`;
      const now = Number(readFileSync(`${dir}now.txt`, 'utf8').trim());
      const quote = new Uint8Array(readFileSync(`${dir}quote.bin`));
      const roots = [new Uint8Array(readFileSync(`${dir}root.pem`))];
      for (const f of readdirSync(dir).filter((f) => f.startsWith('collateral') && f.endsWith('.json'))) {
        const collateral = JSON.parse(readFileSync(`${dir}${f}`, 'utf8')) as unknown;
        expect(await agreed(quote, { collateral, now, roots }), `${c.name}/${f}`).toBeDefined();
      }
    }
  });
});

describe('attacks through the split path fail in whichever half checks them', () => {
  it('a forged TCB info signature (collateral half, on the worker)', async () => {
    const s = await makeSyntheticTdx();
    const sig = Buffer.from(s.collateral.tcb_info_signature as string, 'hex');
    sig[5]! ^= 1;
    const collateral = { ...s.collateral, tcb_info_signature: sig.toString('hex') };
    expect(await agreed(s.quote, { collateral, now: s.now, roots: synthRoots(s) })).toEqual({
      code: 'E_EVIDENCE_COLLATERAL',
      message: 'TCB info signature is invalid',
    });
  });

  it('collateral signed with a PCK key instead of the TCB signing key', async () => {
    const s = await makeSyntheticTdx({ collateralSignedByPck: true });
    const o = await agreed(s.quote, { collateral: s.collateral, now: s.now, roots: synthRoots(s) });
    expect('code' in o && o.code).toMatch(/^E_EVIDENCE_(CHAIN|COLLATERAL)$/);
  });

  it('a revoked PCK (the PCK CRL signature checked here, the revocation in the combination)', async () => {
    const s = await makeSyntheticSgx({ revokePck: true });
    const o = await agreed(s.quote, { collateral: s.collateral, now: s.now, roots: synthRoots(s) });
    expect(o).toMatchObject({ code: 'E_EVIDENCE_REVOKED' });
  });

  it('a PCK CRL with a forged signature (the check the calling thread makes after the worker)', async () => {
    const s = await makeSyntheticSgx();
    const crl = Buffer.from(s.collateral.pck_crl as string, 'hex');
    crl[crl.length - 1]! ^= 1;
    const collateral = { ...s.collateral, pck_crl: crl.toString('hex') };
    expect(await agreed(s.quote, { collateral, now: s.now, roots: synthRoots(s) })).toEqual({
      code: 'E_EVIDENCE_CHAIN',
      message: 'PCK CRL signature is invalid',
    });
  });

  it('a wrong QE identity: Intel-signed, but the TD QE identity given with an SGX quote', async () => {
    const sgx = vectorJson(VECTORS.sgx.collateral);
    const tdx = vectorJson(VECTORS.tdx.collateral);
    const collateral = {
      ...sgx,
      qe_identity: tdx.qe_identity,
      qe_identity_signature: tdx.qe_identity_signature,
    };
    expect(await agreed(vector(VECTORS.sgx.quote), { collateral, now: VECTORS.sgx.now })).toEqual({
      code: 'E_EVIDENCE_COLLATERAL',
      message: 'QE identity is TD_QE but the quote is SGX',
    });
  });

  it('a QE enclave below its identity level lowers the status the same way', async () => {
    const s = await makeSyntheticSgx({ qeIsvSvn: 1 });
    const o = await agreed(s.quote, { collateral: s.collateral, now: s.now, roots: synthRoots(s) });
    expect(o).toBeDefined();
  });

  it('a bad quote signature (quote half, on the calling thread)', async () => {
    const quote = vector(VECTORS.tdx.quote);
    quote[100]! ^= 1;
    expect(
      await agreed(quote, { collateral: vectorJson(VECTORS.tdx.collateral), now: VECTORS.tdx.now }),
    ).toEqual({ code: 'E_EVIDENCE_SIGNATURE', message: 'quote signature is invalid' });
  });
});

describe('a worker that dies or does not answer fails the call, never passes it', () => {
  const sgx = () => ({ collateral: vectorJson(VECTORS.sgx.collateral), now: VECTORS.sgx.now });
  const want = 'ConfigurationAndSWHardeningNeeded';
  /** The SGX vector verified with its split on the collateral worker; `over` replaces options. */
  const onWorker = (over: Partial<NonNullable<Parameters<typeof verifyDcapQuote>[1]>> = {}) =>
    verifyDcapQuote(vector(VECTORS.sgx.quote), { ...sgx(), signatureThreads: 'worker', ...over });
  /** The SGX collateral with a PCK CRL of 100,000 entries (3.5 MB, under the 4 MiB cap): a slow job. */
  const slowCollateral = () => ({
    ...vectorJson(VECTORS.sgx.collateral),
    pck_crl: bigCrl(100_000).toString('hex'),
  });
  /** The tcbStatus a call settled with, or its FirnError code. */
  const outcomeOf = (p: Promise<{ tcbStatus: string }>) =>
    p.then(
      (f) => f.tcbStatus,
      (e: unknown) => (isFirnError(e) ? e.code : 'not a FirnError'),
    );

  it('worker stopped with calls in flight: those calls fail E_INTERNAL; the next call starts a new worker', async () => {
    // A slow job (a 3.5 MB PCK CRL) keeps the worker busy, so both calls are in flight when it stops.
    const slow = slowCollateral();
    warmCollateralWorker();
    const w = collateralWorker();
    expect(w).toBeDefined();
    clearDcapCaches();
    const first = outcomeOf(onWorker({ collateral: slow }));
    const behind = outcomeOf(onWorker());
    await w!.terminate();
    expect(await first).toBe('E_INTERNAL');
    expect(await behind).toBe('E_INTERNAL');
    clearDcapCaches();
    const again = await onWorker();
    expect(again.tcbStatus).toBe(want);
    expect(collateralWorker()).not.toBe(w);
  }, 30_000);

  it('no answer within workerTimeoutMs: every waiting call fails E_TIMEOUT, the worker is replaced', async () => {
    // A PCK CRL of 100,000 entries (3.5 MB, under the 4 MiB cap): the worker parses it for far
    // longer than the 10 ms allowed, so the timer fires first whatever the load.
    const slow = slowCollateral();
    warmCollateralWorker();
    const w = collateralWorker();
    clearDcapCaches();
    const first = outcomeOf(onWorker({ collateral: slow, workerTimeoutMs: 10 }));
    // A call queued behind it, with a generous timeout: it waits on the same stopped worker.
    const behind = outcomeOf(onWorker());
    expect(await first).toBe('E_TIMEOUT');
    expect(await behind).toBe('E_TIMEOUT');
    clearDcapCaches();
    const again = await onWorker();
    expect(again.tcbStatus).toBe(want);
    expect(collateralWorker()).not.toBe(w);
  }, 30_000);

  it('a workerTimeoutMs that is not a positive number is refused, not taken as no limit', async () => {
    for (const workerTimeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY])
      await expect(onWorker({ workerTimeoutMs })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
  });

  it('a process whose only pending work is a split verification waits for it (a call in flight holds the event loop open)', () => {
    const script = `
      import { verifyDcapQuote } from ${JSON.stringify(new URL('./verifyDcapQuote.ts', import.meta.url).href)};
      import { vector, vectorJson, VECTORS } from ${JSON.stringify(new URL('../../test/dcap/testVectors.ts', import.meta.url).href)};
      const f = await verifyDcapQuote(vector(VECTORS.tdx.quote), { collateral: vectorJson(VECTORS.tdx.collateral), now: VECTORS.tdx.now, signatureThreads: 'worker' });
      process.stdout.write('status ' + f.tcbStatus);
    `;
    const runTs = fileURLToPath(new URL('../../../cli/bin/run-ts.mjs', import.meta.url));
    const dir = mkdtempSync(join(tmpdir(), 'firn-split-'));
    const file = join(dir, 'exit.mts');
    writeFileSync(file, script);
    try {
      const out = execFileSync(process.execPath, [runTs, file], { encoding: 'utf8', timeout: 50_000 });
      expect(out).toBe('status UpToDate');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
