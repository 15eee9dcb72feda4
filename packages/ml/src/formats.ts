/**
 * The ML package's formats and data handling, without the runtimes: tensor JSON and binary
 * tensors, safetensors, CSV datasets, model definitions, the seeded PRNG and the ONNX writer.
 * Requesters and the CLI import this (`@firn/ml/formats`) so they never load onnxruntime or
 * TensorFlow.js just to encode a tensor.
 */
export * from './csv.ts';
export * from './dataset.ts';
export * from './modelDefinition.ts';
export * from './onnxExternalData.ts';
export * from './onnxProto.ts';
export * from './prng.ts';
export * from './safetensors.ts';
export * from './tensorBinary.ts';
export * from './tensorJson.ts';
