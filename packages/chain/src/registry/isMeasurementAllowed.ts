import { firnRegistryAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import { assertBytes32, assertUint } from '../validate.ts';
import type { MeasurementParams } from './allowMeasurement.ts';

/** Whether governance currently allows this measurement for this TEE type. */
export async function isMeasurementAllowed(clients: FirnClients, p: MeasurementParams): Promise<boolean> {
  try {
    return await clients.public.readContract({
      address: clients.addresses.registry,
      abi: firnRegistryAbi,
      functionName: 'isMeasurementAllowed',
      args: [Number(assertUint(p.teeType, 8, 'teeType')), assertBytes32(p.measurement, 'measurement')],
    });
  } catch (e) {
    throw toChainError(e, 'isMeasurementAllowed');
  }
}
