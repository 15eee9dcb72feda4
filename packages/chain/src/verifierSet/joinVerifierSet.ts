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

/**
 * Active member: add `amount` wei to the verifier stake, e.g. before a raised minVerifierStake
 * executes (a raise deactivates every member below it; decision 1705). The larger stake votes in
 * rounds opened after this call; rounds already open keep the stake they counted. Reverts
 * NotVerifier (not an active member), EmptyTopUp (amount 0).
 */
export async function addVerifierStake(clients: FirnClients, amount: bigint): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.verifierSet,
    abi: firnVerifierSetAbi,
    functionName: 'addStake',
    args: [],
    value: amount,
  });
}
