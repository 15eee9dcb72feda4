import { type FirnClients, postData } from '@firn/chain';
import { isFirnError } from '@firn/core';
import type { Logger } from '../logger.ts';

/** What the node relays for each record an app's `ctx.signData` made (fields as the enclave returns them). */
export interface RelayedRecord {
  enclaveId: `0x${string}`;
  dataHash: `0x${string}`;
  uri: string;
  signature: `0x${string}`;
}

/**
 * Relay the enclave-signed data records of a job to FirnDataLedger (docs/decisions/1100). The
 * signature is the authority, so the host adds nothing and can change nothing; a record the
 * ledger refuses (already posted, node no longer eligible) is logged by its code and skipped,
 * never failing the job: the requester relays any record still missing (anyone may).
 * Returns the transaction hashes of the records posted here.
 */
export async function postSignedDataRecords(
  clients: FirnClients,
  records: readonly RelayedRecord[],
  log: Logger,
): Promise<`0x${string}`[]> {
  const txs: `0x${string}`[] = [];
  for (const r of records) {
    try {
      const res = await postData(clients, {
        enclaveId: r.enclaveId,
        dataHash: r.dataHash,
        uri: r.uri,
        signature: r.signature,
      });
      txs.push(res.hash);
    } catch (e) {
      log.warn('signed-data record not posted', { code: isFirnError(e) ? e.code : 'E_CHAIN' });
    }
  }
  if (txs.length > 0) log.info('signed-data records posted', { records: txs.length });
  return txs;
}
