export * from './buildDashboard.ts';
export * from './readOnlyRpc.ts';
export * from './serveDashboard.ts';
