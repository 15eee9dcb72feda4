export * from './certChain.ts';
export { checkOcsp, type OcspOptions, type OcspResult } from './checkOcsp.ts';
export * from './compareMeasurements.ts';
export * from './deviceModel.ts';
export * from './evaluateGpu.ts';
export * from './nvidiaRoots.ts';
export * from './parseSpdmReport.ts';
export * from './verifyCompositeBinding.ts';
export {
  type GpuFacts,
  type GpuVerifyContext,
  type RimSummary,
  verifyGpuEvidence,
  verifyGpuEvidenceList,
} from './verifyGpuEvidence.ts';
export * from './verifyRim.ts';
export * from './rimService.ts';
export * from './ocspClient.ts';
