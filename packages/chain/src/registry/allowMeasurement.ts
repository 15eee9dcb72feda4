import type { Hex } from 'viem';
import { firnRegistryAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32, assertUint } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

export interface MeasurementParams {
  /** 1 simulated, 2 sgx, 3 tdx. */
  teeType: number;
  measurement: Hex;
}

/** Governance: add a measurement to the allow-list of one TEE type. */
export async function allowMeasurement(clients: FirnClients, p: MeasurementParams): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.registry,
    abi: firnRegistryAbi,
    functionName: 'allowMeasurement',
    args: [Number(assertUint(p.teeType, 8, 'teeType')), assertBytes32(p.measurement, 'measurement')],
  });
}
