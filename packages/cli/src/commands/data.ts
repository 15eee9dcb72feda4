import { readFileSync } from 'node:fs';
import { createFirnClients } from '@firn/chain';
import {
  MAX_SIGNED_DATA_RECORD_BYTES,
  MAX_SIGNED_DATA_RECORDS,
  parseSignedDataRecords,
  recordFromTx,
  type SignedDataCheck,
  verifySignedDataRecord,
} from '@firn/client';
import { FirnError, type Hex, hexBytes, InvalidInputError, TooLargeError } from '@firn/core';
import { namingFile } from './infer.ts';
import type { Command } from 'commander';
import { zeroAddress } from 'viem';
import { resolveChain } from '../chainArgs.ts';
import { printError, printJson } from '../output.ts';

export interface DataVerifyOptions {
  rpc?: string;
  registry?: string;
  deployment?: string;
  devnet?: string;
  /** A record JSON file (one record, or a records.json list). */
  record?: string;
  /** Only the record at this index of a list (default: every record). */
  index?: string;
  /** A data-ledger `post` transaction hash, instead of --record. */
  tx?: string;
  /** With --tx: the app's 32-byte digest, to check it too. */
  digest?: string;
  json?: boolean;
}

export interface DataVerifyResult {
  ok: boolean;
  records: (SignedDataCheck & { topic: string; enclaveId: Hex; digest?: Hex })[];
}

/**
 * `firn data verify`: check enclave-signed data records against the chain (see
 * verifySignedDataRecord for what is and is not proven). Every record must pass for ok.
 * Raises E_INVALID_INPUT (neither or both of --record/--tx, a deployment without a data ledger),
 * E_TOO_LARGE / E_PARSE (a record file that is not one), E_NOT_FOUND (--tx is no ledger post).
 */
export async function dataVerifyCommand(o: DataVerifyOptions): Promise<DataVerifyResult> {
  if ((o.record === undefined) === (o.tx === undefined))
    throw new InvalidInputError('pass exactly one of --record FILE or --tx HASH');
  const chain = await resolveChain(o);
  if (chain.deployment.dataLedger === zeroAddress)
    throw new InvalidInputError('this deployment names no data ledger: pass --devnet or --deployment');
  const clients = createFirnClients(chain.rpcUrl, undefined, chain.deployment);
  const out: DataVerifyResult['records'] = [];
  if (o.tx !== undefined) {
    const tx = bytesHex(o.tx, '--tx');
    const digest = o.digest === undefined ? undefined : bytesHex(o.digest, '--digest');
    const { record } = await recordFromTx(clients, tx, digest);
    const check = await verifySignedDataRecord(clients, record);
    out.push({ ...check, topic: record.topic, enclaveId: record.enclaveId, ...(digest ? { digest } : {}) });
  } else {
    const cap = MAX_SIGNED_DATA_RECORD_BYTES * MAX_SIGNED_DATA_RECORDS;
    const text = readFileSync(o.record!, 'utf8');
    if (text.length > cap) throw new TooLargeError('record file', text.length, cap);
    let records = namingFile('--record', o.record!, () => parseSignedDataRecords(text));
    if (o.index !== undefined) {
      const i = Number(o.index);
      if (!Number.isInteger(i) || i < 0 || i >= records.length)
        throw new InvalidInputError(`--index must be 0..${records.length - 1}`);
      records = [records[i]!];
    }
    if (records.length === 0) throw new FirnError('E_NOT_FOUND', `${o.record} holds no record`);
    for (const r of records) {
      const check = await verifySignedDataRecord(clients, r);
      out.push({ ...check, topic: r.topic, enclaveId: r.enclaveId, digest: r.digest });
    }
  }
  return { ok: out.every((r) => r.ok), records: out };
}

function bytesHex(v: string, flag: string): Hex {
  try {
    hexBytes(v, flag, 32);
  } catch {
    throw new InvalidInputError(`${flag} must be 32 bytes of 0x hex`);
  }
  return v.toLowerCase() as Hex;
}

export function registerData(program: Command): void {
  const data = program.command('data').description('enclave-signed data on the data ledger');
  data
    .command('verify')
    .description(
      'check an enclave-signed record: signature, registered enclave key of an Active, allow-listed node at its block; prints the app measurement',
    )
    .option('--record <file>', 'record JSON (one record, or DIR/records.json from firn run)')
    .option('--index <n>', 'only the record at this index of a list')
    .option('--tx <hash>', 'a data-ledger post transaction instead of a record file')
    .option('--digest <hex>', 'with --tx: the app digest to check against the signed dataHash')
    .option('--devnet <file>', 'devnet state file')
    .option('--deployment <file>', 'deployment JSON')
    .option('--rpc <url>', 'JSON-RPC URL (overrides the file)')
    .option('--json', 'print JSON')
    .action(async (o: DataVerifyOptions) => {
      try {
        const r = await dataVerifyCommand(o);
        if (o.json) printJson(r);
        else
          for (const c of r.records) {
            if (c.ok)
              process.stdout.write(
                `record valid: topic ${c.topic}, signed by enclave ${c.signer} (Enclave ID ${c.enclaveId}), Active and allow-listed at block ${c.blockNumber}\n  app measurement: ${c.measurement}\n`,
              );
            else
              process.stdout.write(
                `record INVALID (topic ${c.topic}):\n${c.reasons.map((x) => `  - ${x}`).join('\n')}\n`,
              );
          }
        if (!r.ok) process.exitCode = 1;
      } catch (e) {
        printError(e, o.json === true);
        process.exitCode = 1;
      }
    });
}
