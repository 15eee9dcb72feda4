export * from './appraiseRegistration.ts';
export * from './verifierDaemon.ts';
