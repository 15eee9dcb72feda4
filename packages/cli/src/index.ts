export * from './devnet/startDevnet.ts';
