import { firnRegistryAbi } from '../abi/generated.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32, assertUint } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';
import type { MeasurementParams } from './allowMeasurement.ts';

/** Governance: remove a measurement from the allow-list (stops new registrations and claims). */
export async function revokeMeasurement(clients: FirnClients, p: MeasurementParams): Promise<WriteResult> {
  return writeContractAndWait(clients, {
    address: clients.addresses.registry,
    abi: firnRegistryAbi,
    functionName: 'revokeMeasurement',
    args: [Number(assertUint(p.teeType, 8, 'teeType')), assertBytes32(p.measurement, 'measurement')],
  });
}
