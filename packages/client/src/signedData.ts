import {
  type FirnClients,
  firnDataLedgerAbi,
  firnRegistryAbi,
  getNode,
  hashSignedData,
  NodeStatus,
  wasEnclaveAddress,
} from '@firn/chain';
import {
  assertSignedDataTopic,
  bytesToHex,
  FirnError,
  type Hex,
  hexBytes,
  ParseError,
  SIGNED_DATA_URI_PREFIX,
  signedDataHash,
  signedDataUri,
  TooLargeError,
} from '@firn/core';
import { recoverAddress } from '@firn/crypto';
import { decodeFunctionData, parseEventLogs } from 'viem';

/**
 * Enclave-signed data records (issue 12; docs/decisions/1100-signed-data-records.md).
 *
 * An app's `ctx.signData(digest, {topic})` makes the enclave sign the data ledger's EIP-712 struct
 * `SignedData(bytes32 enclaveId, bytes32 dataHash, string uri)` (domain: name "firn", version "1",
 * chainId, the FirnDataLedger) where
 *   dataHash = SHA-256(tagged "firn/signed-data/v1", topic, digest)   (@firn/core signedDataHash)
 *   uri      = "firn:data:" + topic                                   (@firn/core signedDataUri)
 * so the topic is bound twice (in the hash, and readable back from the ledger's event), and the
 * app's raw digest is never signed untagged. The node relays the signature to the ledger; anyone
 * can then check the record with `verifySignedDataRecord`.
 */

/** Largest record file read (JSON). */
export const MAX_SIGNED_DATA_RECORD_BYTES = 16 * 1024;
/** Largest records.json (a list of records) read. */
export const MAX_SIGNED_DATA_RECORDS = 256;

/** One enclave-signed data record, as `firn run` writes it to DIR/records.json (one entry). */
export interface SignedDataRecord {
  v: 1;
  /** Short lowercase ASCII label chosen by the app (e.g. "overlap-size"). */
  topic: string;
  /** The app's own 32-byte digest of the data it signs. */
  digest: Hex;
  /** signedDataHash(topic, digest): the ledger's `dataHash`. */
  dataHash: Hex;
  /** signedDataUri(topic): the ledger's `uri`. */
  uri: string;
  enclaveId: Hex;
  /** The enclave address that signed (recovered and checked, never trusted as given). */
  enclaveAddress: Hex;
  /** 65-byte r || s || v EIP-712 signature over SignedData under the ledger's domain. */
  signature: Hex;
  /** The ledger the signature is for. */
  ledger: { chainId: number; address: Hex };
  /** Set once posted: the transaction and block that recorded it (checked against the chain). */
  txHash?: Hex;
  blockNumber?: string;
  /** The job whose run signed it, when known (informational, checked against nothing). */
  jobId?: Hex;
}

const RECORD_KEYS = new Set([
  'v',
  'topic',
  'digest',
  'dataHash',
  'uri',
  'enclaveId',
  'enclaveAddress',
  'signature',
  'ledger',
  'txHash',
  'blockNumber',
  'jobId',
]);

/**
 * Parse one record (an object, or JSON text of at most MAX_SIGNED_DATA_RECORD_BYTES). Checks shapes
 * only, no signature: unknown keys, wrong lengths or a topic that is not one are E_PARSE.
 */
export function parseSignedDataRecord(input: unknown): SignedDataRecord {
  let o: unknown = input;
  if (typeof input === 'string') {
    if (input.length > MAX_SIGNED_DATA_RECORD_BYTES)
      throw new TooLargeError('signed-data record', input.length, MAX_SIGNED_DATA_RECORD_BYTES);
    try {
      o = JSON.parse(input);
    } catch {
      throw new ParseError('the signed-data record is not JSON');
    }
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw new ParseError('a signed-data record must be a JSON object');
  const r = o as Record<string, unknown>;
  for (const k of Object.keys(r))
    if (!RECORD_KEYS.has(k))
      throw new ParseError(`the signed-data record has an unknown field "${k.slice(0, 40)}"`);
  if (r.v !== 1) throw new ParseError('the signed-data record must have v: 1');
  const hex = (k: string, n: number) => {
    try {
      return bytesToHex(hexBytes(r[k], k, n));
    } catch {
      throw new ParseError(`the signed-data record's ${k} must be ${n} bytes of hex`);
    }
  };
  let topic: string;
  try {
    topic = assertSignedDataTopic(r.topic);
  } catch (e) {
    throw new ParseError((e as Error).message);
  }
  if (typeof r.uri !== 'string' || r.uri.length > 2048)
    throw new ParseError('the signed-data record needs a uri of at most 2048 characters');
  const ledger = r.ledger as Record<string, unknown> | undefined;
  if (typeof ledger !== 'object' || ledger === null || !Number.isSafeInteger(ledger.chainId))
    throw new ParseError('the signed-data record needs ledger: {chainId, address}');
  let ledgerAddress: Hex;
  try {
    ledgerAddress = bytesToHex(hexBytes(ledger.address, 'ledger.address', 20));
  } catch {
    throw new ParseError("the signed-data record's ledger.address must be 20 bytes of hex");
  }
  if (
    r.blockNumber !== undefined &&
    (typeof r.blockNumber !== 'string' || !/^[0-9]{1,20}$/.test(r.blockNumber))
  )
    throw new ParseError("the signed-data record's blockNumber must be a decimal string");
  return {
    v: 1,
    topic,
    digest: hex('digest', 32),
    dataHash: hex('dataHash', 32),
    uri: r.uri,
    enclaveId: hex('enclaveId', 32),
    enclaveAddress: hex('enclaveAddress', 20),
    signature: hex('signature', 65),
    ledger: { chainId: ledger.chainId as number, address: ledgerAddress },
    ...(r.txHash === undefined ? {} : { txHash: hex('txHash', 32) }),
    ...(r.blockNumber === undefined ? {} : { blockNumber: r.blockNumber as string }),
    ...(r.jobId === undefined ? {} : { jobId: hex('jobId', 32) }),
  };
}

/** Parse a records.json list (at most MAX_SIGNED_DATA_RECORDS entries; text capped accordingly). */
export function parseSignedDataRecords(text: string): SignedDataRecord[] {
  const cap = MAX_SIGNED_DATA_RECORD_BYTES * MAX_SIGNED_DATA_RECORDS;
  if (text.length > cap) throw new TooLargeError('records file', text.length, cap);
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    throw new ParseError('the records file is not JSON');
  }
  if (!Array.isArray(list)) return [parseSignedDataRecord(list)];
  if (list.length > MAX_SIGNED_DATA_RECORDS)
    throw new TooLargeError('records list', list.length, MAX_SIGNED_DATA_RECORDS);
  return list.map((x) => parseSignedDataRecord(x));
}

export interface SignedDataCheck {
  ok: boolean;
  /** Every reason the record is not accepted (empty when ok). */
  reasons: string[];
  /** The address the signature recovers to. */
  signer?: Hex;
  /** The EIP-712 digest the ledger recorded it under. */
  ledgerDigest?: Hex;
  /** The block the ledger recorded it at (the block every registry fact is read at). */
  blockNumber?: bigint;
  /** The node's registered measurement at that block: the app's measurement. */
  measurement?: Hex;
  nodeStatus?: string;
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Check an enclave-signed data record against the chain: the topic and digest hash to the signed
 * dataHash and uri; the EIP-712 signature under this deployment's data ledger recovers to the
 * record's enclave address; the ledger holds the record (at block B); at B that address was the
 * registered enclave key of the record's Enclave ID, the node was Active, and its measurement was
 * allow-listed for its TEE type; a given txHash/blockNumber are the transaction and block that
 * recorded it. Returns every reason for a no, and the app's measurement.
 * It proves that code with that measurement, running in a registered enclave, signed this digest
 * under this topic; it does not prove the data behind the digest is true beyond what that code
 * guarantees. Registry reads at B need an archive-capable RPC (anvil is one).
 * Errors: only RPC failures raise (E_UNAVAILABLE / E_CHAIN); a bad record is a reason, not a throw.
 */
export async function verifySignedDataRecord(
  clients: FirnClients,
  record: Omit<SignedDataRecord, 'digest'> & { digest?: Hex },
): Promise<SignedDataCheck> {
  const reasons: string[] = [];
  const ledger = clients.addresses.dataLedger;
  if (record.ledger.chainId !== clients.addresses.chainId)
    reasons.push(`record is for chain ${record.ledger.chainId}, not ${clients.addresses.chainId}`);
  if (!same(record.ledger.address, ledger)) reasons.push('record is for another data ledger');
  let hashOk = true;
  try {
    // Without the app's digest (a record read back from a transaction) the dataHash stands as signed.
    if (record.digest !== undefined && !same(signedDataHash(record.topic, record.digest), record.dataHash))
      hashOk = false;
    if (signedDataUri(record.topic) !== record.uri) reasons.push('uri is not the one of the topic');
  } catch {
    hashOk = false;
  }
  if (!hashOk) reasons.push('dataHash is not the tagged hash of the topic and digest');
  const domain = { chainId: clients.addresses.chainId, verifyingContract: ledger };
  const ledgerDigest = hashSignedData(domain, {
    enclaveId: record.enclaveId,
    dataHash: record.dataHash,
    uri: record.uri,
  });
  let signer: Hex | undefined;
  try {
    signer = recoverAddress(
      hexBytes(ledgerDigest, 'digest', 32),
      hexBytes(record.signature, 'signature', 65),
    );
  } catch {
    reasons.push('signature does not recover');
  }
  if (signer !== undefined && !same(signer, record.enclaveAddress))
    reasons.push('signature was not made by the record’s enclave address');
  const onLedger = await clients.public.readContract({
    address: ledger,
    abi: firnDataLedgerAbi,
    functionName: 'getRecord',
    args: [ledgerDigest],
  });
  const base = { ledgerDigest, ...(signer ? { signer } : {}) };
  if (onLedger.signer === '0x0000000000000000000000000000000000000000') {
    reasons.push('the data ledger holds no record with this signed content');
    return { ok: false, reasons, ...base };
  }
  const block = BigInt(onLedger.blockNumber);
  if (!same(onLedger.enclaveId, record.enclaveId)) reasons.push('ledger recorded another Enclave ID');
  if (signer !== undefined && !same(onLedger.signer, signer)) reasons.push('ledger recorded another signer');
  if (record.blockNumber !== undefined && BigInt(record.blockNumber) !== block)
    reasons.push(`record says block ${record.blockNumber}, the ledger recorded it at ${block}`);
  if (record.txHash !== undefined) {
    const found = await postedIn(clients, record.txHash).catch(() => undefined);
    if (found === undefined || !same(found.digest, ledgerDigest) || found.blockNumber !== block)
      reasons.push('txHash is not the transaction that recorded this record');
  }
  if (
    signer !== undefined &&
    !(await wasEnclaveAddress(clients, { enclaveId: record.enclaveId, account: signer, blockNumber: block }))
  )
    reasons.push(`signer was not the registered enclave address at block ${block}`);
  const node = await getNode(clients, record.enclaveId, { blockNumber: block });
  if (node.status !== NodeStatus.Active)
    reasons.push(`node was ${NodeStatus[node.status]} at block ${block}, not Active`);
  const allowed = await clients.public.readContract({
    address: clients.addresses.registry,
    abi: firnRegistryAbi,
    functionName: 'isMeasurementAllowed',
    args: [node.teeType, node.measurement],
    blockNumber: block,
  });
  if (!allowed) reasons.push(`measurement ${node.measurement} was not allow-listed at block ${block}`);
  return {
    ok: reasons.length === 0,
    reasons,
    ...base,
    blockNumber: block,
    measurement: node.measurement,
    nodeStatus: NodeStatus[node.status],
  };
}

/** What a ledger `post` transaction carried, decoded from its calldata and its DataPosted event. */
export interface PostedData {
  enclaveId: Hex;
  dataHash: Hex;
  uri: string;
  signature: Hex;
  digest: Hex;
  blockNumber: bigint;
}

/**
 * Read a data-ledger `post` transaction: the signed fields from its calldata, the ledger digest and
 * block from its DataPosted event (E_NOT_FOUND when the transaction did not post to this ledger).
 */
export async function postedIn(clients: FirnClients, txHash: Hex): Promise<PostedData> {
  const [tx, receipt] = await Promise.all([
    clients.public.getTransaction({ hash: txHash }),
    clients.public.getTransactionReceipt({ hash: txHash }),
  ]);
  const [ev] = parseEventLogs({ abi: firnDataLedgerAbi, eventName: 'DataPosted', logs: receipt.logs }).filter(
    (l) => same(l.address, clients.addresses.dataLedger),
  );
  if (ev === undefined || tx.to == null || !same(tx.to, clients.addresses.dataLedger))
    throw new FirnError(
      'E_NOT_FOUND',
      `transaction ${txHash} did not post to the data ledger ${clients.addresses.dataLedger}`,
    );
  const call = decodeFunctionData({ abi: firnDataLedgerAbi, data: tx.input });
  if (call.functionName !== 'post')
    throw new FirnError('E_NOT_FOUND', `transaction ${txHash} is not a data ledger post`);
  const [enclaveId, dataHash, uri, signature] = call.args as [Hex, Hex, string, Hex];
  return { enclaveId, dataHash, uri, signature, digest: ev.args.digest, blockNumber: receipt.blockNumber };
}

/**
 * The record of a ledger post transaction, for `firn data verify --tx`: the topic comes from the
 * uri; the app's raw digest is not on chain, so `digest` is absent and the dataHash is checked as
 * signed (pass the digest to also check it).
 */
export async function recordFromTx(
  clients: FirnClients,
  txHash: Hex,
  digest?: Hex,
): Promise<{ record: Omit<SignedDataRecord, 'digest'> & { digest?: Hex }; posted: PostedData }> {
  const posted = await postedIn(clients, txHash);
  const signer = (() => {
    try {
      return recoverAddress(
        hexBytes(posted.digest, 'digest', 32),
        hexBytes(posted.signature, 'signature', 65),
      );
    } catch {
      return '0x0000000000000000000000000000000000000000' as Hex;
    }
  })();
  const topic = posted.uri.startsWith(SIGNED_DATA_URI_PREFIX)
    ? posted.uri.slice(SIGNED_DATA_URI_PREFIX.length)
    : '';
  return {
    record: {
      v: 1,
      topic,
      ...(digest === undefined ? {} : { digest }),
      dataHash: posted.dataHash,
      uri: posted.uri,
      enclaveId: posted.enclaveId,
      enclaveAddress: signer,
      signature: posted.signature,
      ledger: { chainId: clients.addresses.chainId, address: clients.addresses.dataLedger },
      txHash,
      blockNumber: posted.blockNumber.toString(),
    },
    posted,
  };
}
