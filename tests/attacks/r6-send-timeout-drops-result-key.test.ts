import { existsSync } from 'node:fs';
import { TimeoutError } from 'viem';
import { describe, expect, it } from 'vitest';
import { inferPosts, reserveInfer, useTempFirnHome } from '../helpers/resultKeyJournal.ts';

// R6 red team, decision 1747 ("what a paid job needs is on disk before paying").
// `firn infer|train|run` without --kem-key reserve the derived result key's salt on disk, then
// send postJob. writeContractAndWait calls onSent (the journal's onPostSent, which writes the
// pending entry holding the salt) only after eth_sendRawTransaction RETURNS a hash. When the RPC
// takes the raw transaction and then does not answer (a hosted RPC under load; 1749's timeout is
// "accepted the request but did not answer within 10 s (3 tries)"), the send throws a viem
// TimeoutError with the signed transaction already in the mempool. The command then calls
// post.failed(e) with nothing `pending` and no `previous`, and journalPosts.failed removes the
// reservation ("Nothing was ever sent: the reserved salt belongs to no job"). The transaction is
// mined: the escrow is paid, the node runs the job, and no file anywhere holds the salt, so its
// result can never be opened, exactly the outcome 1747 exists to prevent.
// Safe outcome: the reservation is removed only when the failure proves nothing was broadcast
// (a failure before signing/sending, or E_CHAIN_REPLACED/REVERTED); a send that may have reached the
// RPC keeps it.
useTempFirnHome('firn-r6-reserve-');

describe('1747: a postJob send that timed out after reaching the RPC', () => {
  it('keeps the result key reservation (the transaction may be mined and paid)', () => {
    const reservation = reserveInfer();
    expect(existsSync(reservation)).toBe(true);
    const post = inferPosts(reservation);
    // eth_sendRawTransaction was received by the RPC, which never answered: viem's TimeoutError
    // from sendSigned, before writeContractAndWait could call onSent.
    const e = new TimeoutError({
      body: { method: 'eth_sendRawTransaction', params: ['0x02f8...'] },
      url: 'https://rpc.example/v2/key',
    });
    post.failed(e);
    expect(existsSync(reservation), 'the only copy of the salt of a possibly paid job was deleted').toBe(
      true,
    );
  });
});
