/**
 * Every hash and signature in firn is domain-separated by one of these tags. Add new tags here,
 * never inline: one list makes collisions between contexts reviewable.
 */
export const TAGS = {
  reportData: 'firn/report-data/v1',
  enclaveId: 'firn/enclave-id/v1',
  evidenceDigest: 'firn/evidence-digest/v1',
  gpuNonce: 'firn/gpu-nonce/v1',
  gpuEvidence: 'firn/gpu-evidence/v1',
  simQuote: 'firn/sim-quote/v1',
  simPlatform: 'firn/sim-platform/v1',
  seal: 'firn/seal/v1',
  measurement: 'firn/measurement/v1',
  sealedArtifact: 'firn/sealed-artifact/v1',
  artifactKeyWrap: 'firn/artifact-key-wrap/v1',
  grant: 'firn/grant/v1',
  channel: 'firn/channel/v1',
  jobRequest: 'firn/job-request/v1',
  workProof: 'firn/work-proof/v1',
  inputCommitment: 'firn/input-commitment/v1',
  outputCommitment: 'firn/output-commitment/v1',
  workloadHash: 'firn/workload/v1',
  signedData: 'firn/signed-data/v1',
  verifierNonce: 'firn/verifier-nonce/v1',
  channelRequest: 'firn/channel-request/v1',
  channelResponse: 'firn/channel-response/v1',
  channelEvent: 'firn/channel-event/v1',
  kemKeyId: 'firn/kem-key-id/v1',
  gpuSimMeasurement: 'firn/gpu-sim-measurement/v1',
  gpuSimFirmware: 'firn/gpu-sim-firmware/v1',
  gramineSealKey: 'firn/gramine-seal-key/v1',
  sessionOpen: 'firn/session-open/v1',
  sessionRequest: 'firn/session-request/v1',
  sessionResponse: 'firn/session-response/v1',
  sessionTranscript: 'firn/session-transcript/v1',
} as const;

export type Tag = (typeof TAGS)[keyof typeof TAGS];
