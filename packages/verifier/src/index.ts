export * from './appraiseRegistration.ts';
export * from './verifierDaemon.ts';
export * from './proofChecker.ts';
