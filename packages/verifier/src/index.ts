export * from './verifierDaemon.ts';
export * from './livenessChallenger.ts';
export * from './proofChecker.ts';
export * from './resultAvailability.ts';
export * from './cursorStore.ts';
