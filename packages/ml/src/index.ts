export * from './formats.ts';
export * from './inference.ts';
export * from './onnxExport.ts';
export * from './predict.ts';
export * from './tfBackend.ts';
export * from './train.ts';
export * from './weights.ts';
export * from './warmTraining.ts';
