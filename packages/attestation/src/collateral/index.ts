export * from './collateralSource.ts';
export * from './createCollateralFetcher.ts';
export * from './loadQuoteCollateralV3.ts';
