export * from './amdCertificates.ts';
export * from './amdRoots.ts';
export * from './evaluateSevSnp.ts';
export * from './kdsClient.ts';
export * from './sevSnpCollateralSource.ts';
export * from './sevSnpReport.ts';
export * from './sevSnpVerifier.ts';
export * from './verifySevSnpReport.ts';
