import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AnvilInstance,
  approveNode,
  type ChainRevertedError,
  governAndExecute,
  revokeMeasurementCall,
  createFirnClients,
  type FirnClients,
  type FirnDeployment,
  joinVerifierSet,
  postData,
  registerNode,
  signedDataTypedData,
  startAnvil,
} from '@firn/chain';
import { parseSignedDataRecord, type SignedDataRecord, verifySignedDataRecord } from '@firn/client';
import { bytesToHex, sha256, signedDataHash, signedDataUri, utf8 } from '@firn/core';
import { keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTestFirn } from '../../packages/chain/test/testDeployment.ts';
import { dataVerifyCommand } from '../../packages/cli/src/commands/data.ts';

// Attacks on enclave-signed data records (issue 12): a record with one byte changed, a record
// signed by a key that is not the registered enclave key, a record for another ledger, a record
// never posted, a record whose claimed transaction is another one. Each must be refused by
// verifySignedDataRecord and by `firn data verify`; the genuine record is accepted.
const ETH = 10n ** 18n;
let anvil: AnvilInstance;
let deployment: FirnDeployment;
let reader: FirnClients;
let record: SignedDataRecord;
let deploymentFile: string;
const measurement = keccak256(toHex('app-image'));
const enclaveId = keccak256(toHex('app-enclave'));

describe('attacks on enclave-signed data records', () => {
  beforeAll(async () => {
    anvil = await startAnvil({ accounts: 6 });
    deployment = await deployTestFirn(anvil, {
      measurements: [{ teeType: 1, measurement }],
      verifiers: [anvil.accounts[3]!.address],
    });
    const at = (i: number) =>
      createFirnClients(anvil.rpcUrl, anvil.accounts[i]!.privateKey, deployment, { pollingIntervalMs: 50 });
    reader = createFirnClients(anvil.rpcUrl, undefined, deployment);
    // A viem account stands in for the enclave key; the registry and ledger are the real contracts.
    const enclave = privateKeyToAccount(anvil.accounts[5]!.privateKey);
    const evidenceDigest = keccak256(toHex('ev'));
    await joinVerifierSet(at(3), ETH);
    await registerNode(at(1), {
      enclaveId,
      teeType: 1,
      measurement,
      platformIdHash: keccak256(toHex('machine-1')),
      enclaveAddress: enclave.address,
      kemPublicKey: keccak256(toHex('kem')),
      endpoint: 'http://127.0.0.1:9100',
      evidenceDigest,
      stake: ETH,
    });
    await approveNode(at(3), { enclaveId, round: 1, evidenceDigest });
    const topic = 'overlap-size';
    const digest = bytesToHex(sha256(utf8('{"overlap":3}')));
    const data = { enclaveId, dataHash: signedDataHash(topic, digest), uri: signedDataUri(topic) };
    const ledger = { chainId: deployment.chainId, verifyingContract: deployment.dataLedger };
    const signature = await enclave.signTypedData(signedDataTypedData(ledger, data));
    const posted = await postData(at(2), { ...data, signature });
    record = {
      v: 1,
      topic,
      digest,
      ...data,
      enclaveAddress: enclave.address.toLowerCase() as `0x${string}`,
      signature,
      ledger: { chainId: deployment.chainId, address: deployment.dataLedger },
      txHash: posted.hash,
      blockNumber: posted.receipt.blockNumber.toString(),
    };
    const dir = mkdtempSync(join(tmpdir(), 'firn-data-'));
    deploymentFile = join(dir, 'deployment.json');
    writeFileSync(deploymentFile, JSON.stringify({ ...deployment, deployBlock: '0', rpcUrl: anvil.rpcUrl }));
  });
  afterAll(async () => {
    await anvil?.stop();
  });

  it('accepts the genuine record and names the app measurement', async () => {
    const c = await verifySignedDataRecord(reader, record);
    expect(c.reasons).toEqual([]);
    expect(c.ok).toBe(true);
    expect(c.measurement).toBe(measurement);
    expect(c.blockNumber).toBe(BigInt(record.blockNumber!));
  });

  it('refuses the record with any one byte changed', async () => {
    const text = JSON.stringify(record);
    // Change one hex digit inside each value that carries bytes (and one letter of the topic).
    const positions: number[] = [];
    for (const k of ['topic', 'digest', 'dataHash', 'enclaveId', 'enclaveAddress', 'signature', 'txHash']) {
      const start = text.indexOf(`"${k}":"`) + k.length + 4;
      positions.push(start + (k === 'topic' ? 2 : 10));
    }
    positions.push(text.indexOf('"blockNumber":"') + 15);
    for (const pos of positions) {
      const ch = text[pos]!;
      const swapped = ch === 'a' ? 'b' : ch === '1' ? '2' : /[0-9]/.test(ch) ? '1' : 'a';
      const tampered = text.slice(0, pos) + swapped + text.slice(pos + 1);
      let ok: boolean;
      try {
        ok = (await verifySignedDataRecord(reader, parseSignedDataRecord(tampered))).ok;
      } catch {
        ok = false;
      }
      expect(ok, `byte ${pos} (${text.slice(pos - 12, pos + 2)}) changed`).toBe(false);
    }
  });

  it('refuses a record signed by a key that is not the registered enclave key', async () => {
    const forger = privateKeyToAccount(anvil.accounts[4]!.privateKey);
    const ledger = { chainId: deployment.chainId, verifyingContract: deployment.dataLedger };
    const data = { enclaveId, dataHash: record.dataHash, uri: record.uri };
    const signature = await forger.signTypedData(signedDataTypedData(ledger, data));
    const forged = {
      ...record,
      enclaveAddress: forger.address.toLowerCase() as `0x${string}`,
      signature,
    };
    const { txHash: _t, blockNumber: _b, ...unposted } = forged;
    const c = await verifySignedDataRecord(reader, unposted);
    expect(c.ok).toBe(false);
    // The ledger holds the genuine enclave's record of this content, not the forger's.
    expect(c.reasons).toContain('ledger recorded another signer');
    expect(c.reasons).toContain(
      `signer was not the registered enclave address at block ${record.blockNumber}`,
    );
    // Content the enclave never signed is not on the ledger at all.
    const other = {
      enclaveId,
      dataHash: signedDataHash('other', record.digest),
      uri: signedDataUri('other'),
    };
    const sig2 = await forger.signTypedData(signedDataTypedData(ledger, other));
    const c2 = await verifySignedDataRecord(reader, {
      ...unposted,
      topic: 'other',
      ...other,
      signature: sig2,
    });
    expect(c2.reasons).toContain('the data ledger holds no record with this signed content');
  });

  it('refuses a record presented for another ledger or chain', async () => {
    const other = await verifySignedDataRecord(reader, {
      ...record,
      ledger: { chainId: deployment.chainId, address: deployment.jobMarket },
    });
    expect(other.reasons).toContain('record is for another data ledger');
    const chain = await verifySignedDataRecord(reader, {
      ...record,
      ledger: { ...record.ledger, chainId: 1 },
    });
    expect(chain.reasons).toContain(`record is for chain 1, not ${deployment.chainId}`);
  });

  it('refuses a record pointing at another transaction', async () => {
    const block = await reader.public.getBlock({ blockNumber: 1n, includeTransactions: true });
    const otherTx = (block.transactions[0] as { hash: `0x${string}` }).hash;
    const c = await verifySignedDataRecord(reader, { ...record, txHash: otherTx });
    expect(c.reasons).toContain('txHash is not the transaction that recorded this record');
  });

  it('firn data verify accepts the record file and the transaction, refuses the file with one byte changed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-data-'));
    const good = join(dir, 'records.json');
    writeFileSync(good, JSON.stringify([record]));
    const ok = await dataVerifyCommand({ deployment: deploymentFile, record: good });
    expect(ok.ok).toBe(true);
    expect(ok.records[0]!.measurement).toBe(measurement);
    const byTx = await dataVerifyCommand({
      deployment: deploymentFile,
      tx: record.txHash!,
      digest: record.digest,
    });
    expect(byTx.ok).toBe(true);
    expect(byTx.records[0]!.topic).toBe('overlap-size');
    const bad = join(dir, 'bad.json');
    const text = JSON.stringify([record]);
    const i = text.indexOf('"digest":"0x') + 12;
    writeFileSync(bad, text.slice(0, i) + (text[i] === 'f' ? 'e' : 'f') + text.slice(i + 1));
    const refused = await dataVerifyCommand({ deployment: deploymentFile, record: bad });
    expect(refused.ok).toBe(false);
    expect(refused.records[0]!.reasons).toContain('dataHash is not the tagged hash of the topic and digest');
    const wrongDigest = await dataVerifyCommand({
      deployment: deploymentFile,
      tx: record.txHash!,
      digest: bytesToHex(sha256(utf8('{"overlap":4}'))),
    });
    expect(wrongDigest.ok).toBe(false);
  });

  it('keeps a record valid after its measurement is revoked; the ledger takes no new record from that node', async () => {
    const gov = createFirnClients(anvil.rpcUrl, anvil.accounts[0]!.privateKey, deployment, {
      pollingIntervalMs: 50,
    });
    await governAndExecute(gov, {
      timelock: deployment.timelock!,
      calls: [revokeMeasurementCall(deployment, { teeType: 1, measurement })],
      pollMs: 100,
      nudge: async () => {
        await gov.public.request({ method: 'evm_mine', params: [] } as never);
      },
    });
    // Judged at the block the ledger recorded it: still signed by an Active, allow-listed node then.
    const c = await verifySignedDataRecord(reader, record);
    expect(c.reasons).toEqual([]);
    // A record the same enclave signs now is refused by the ledger (NodeNotEligible, reason 3).
    const enclave = privateKeyToAccount(anvil.accounts[5]!.privateKey);
    const later = {
      enclaveId,
      dataHash: signedDataHash('later', record.digest),
      uri: signedDataUri('later'),
    };
    const ledger = { chainId: deployment.chainId, verifyingContract: deployment.dataLedger };
    const sig = await enclave.signTypedData(signedDataTypedData(ledger, later));
    const refused = (await postData(gov, { ...later, signature: sig }).catch(
      (e: unknown) => e,
    )) as ChainRevertedError;
    expect(refused.errorName).toBe('NodeNotEligible');
  }, 60_000);

  it('refuses oversized and malformed record files with typed errors', async () => {
    expect(() => parseSignedDataRecord('x'.repeat(20_000))).toThrow(
      expect.objectContaining({ code: 'E_TOO_LARGE' }),
    );
    expect(() => parseSignedDataRecord('{')).toThrow(expect.objectContaining({ code: 'E_PARSE' }));
    expect(() => parseSignedDataRecord({ ...record, extra: 1 })).toThrow(
      expect.objectContaining({ code: 'E_PARSE' }),
    );
    expect(() => parseSignedDataRecord({ ...record, topic: 'Bad Topic' })).toThrow(
      expect.objectContaining({ code: 'E_PARSE' }),
    );
  });
});
