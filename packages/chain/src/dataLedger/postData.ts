import { type Hex, parseEventLogs } from 'viem';
import { FirnError } from '@firn/core';
import { firnDataLedgerAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32 } from '../validate.ts';
import type { SignedData } from '../workProof.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

export interface PostDataParams extends SignedData {
  /** EIP-712 signature by the node's enclave key over SignedData (domain = the data ledger). */
  signature: Hex;
}

/** Relay enclave-signed data to the ledger; returns the EIP-712 digest it was recorded under. */
export async function postData(
  clients: FirnClients,
  p: PostDataParams,
): Promise<WriteResult & { digest: Hex }> {
  const res = await writeContractAndWait(clients, {
    address: clients.addresses.dataLedger,
    abi: firnDataLedgerAbi,
    functionName: 'post',
    args: [
      assertBytes32(p.enclaveId, 'enclaveId'),
      assertBytes32(p.dataHash, 'dataHash'),
      p.uri,
      p.signature,
    ],
  });
  const [ev] = parseEventLogs({ abi: firnDataLedgerAbi, eventName: 'DataPosted', logs: res.receipt.logs });
  if (!ev) throw new FirnError('E_CHAIN', 'postData: no DataPosted event in the receipt');
  return { ...res, digest: ev.args.digest };
}
