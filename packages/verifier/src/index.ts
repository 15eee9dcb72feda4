export * from './verifierDaemon.ts';
export * from './proofChecker.ts';
