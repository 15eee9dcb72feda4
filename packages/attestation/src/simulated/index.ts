export * from './simulatedPlatform.ts';
export * from './simulatedQuote.ts';
export * from './simulatedVerifier.ts';
