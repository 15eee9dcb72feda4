import { firnVerifierSetAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

/**
 * Join the verifier set with `stake` wei (at least minVerifierStake). Only accounts governance
 * admitted (setAdmission through the timelock) may join: reverts NotAdmitted, AlreadyMember, StakeTooLow.
 */
export async function joinVerifierSet(clients: FirnClients, stake: bigint): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.verifierSet,
    abi: firnVerifierSetAbi,
    functionName: 'join',
    args: [],
    value: stake,
  });
}

/** Stop voting now and start the verifier unbonding period. */
export async function leaveVerifierSet(clients: FirnClients): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.verifierSet,
    abi: firnVerifierSetAbi,
    functionName: 'requestLeave',
    args: [],
  });
}
