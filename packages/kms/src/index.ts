export * from './keyBroker.ts';
export * from './kmsDaemon.ts';
export * from './masterSecret.ts';
