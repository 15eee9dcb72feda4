export * from './awsNitroRoot.ts';
export * from './nitroPolicy.ts';
export * from './nitroVerifier.ts';
export * from './parseNitroDocument.ts';
export * from './verifyNitroDocument.ts';
