export * from './enclaveBundle.ts';
export * from './enclaveSupervisor.ts';
export * from './http/errorStatus.ts';
export * from './http/router.ts';
export * from './logger.ts';
export * from './metrics.ts';
export * from './nodeDaemon.ts';
export * from './registration.ts';
