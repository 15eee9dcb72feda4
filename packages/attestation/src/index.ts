export * from './appraiseEvidence.ts';
export * from './policy/policy.ts';
export * from './simulated/index.ts';
export * from './types.ts';
export * from './verifiers.ts';
