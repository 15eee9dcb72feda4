import type { RegistrationClaim } from '../../packages/attestation/src/appraiseRegistration.ts';

/**
 * A registration claim with placeholder identity fields (simulated TEE) for `endpoint`: for tests
 * of how a node's endpoint answers the attestation request, where no evidence is ever approved.
 */
export function placeholderClaim(endpoint: string): RegistrationClaim {
  return {
    enclaveId: `0x${'11'.repeat(32)}`,
    teeType: 'simulated',
    measurement: `0x${'22'.repeat(32)}`,
    enclaveAddress: `0x${'33'.repeat(20)}`,
    kemPublicKey: `0x${'44'.repeat(32)}`,
    endpoint,
    operator: `0x${'55'.repeat(20)}`,
  };
}
