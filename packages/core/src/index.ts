export * from './bytes.ts';
export * from './errors.ts';
export * from './evidence.ts';
export * from './hash.ts';
export * from './identity.ts';
export * from './tags.ts';
export * from './sharedPath.ts';
