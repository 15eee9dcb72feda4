import { FirnError, type Hex } from '@firn/core';
import { loadOnnxModel, type OnnxModel, parseTensorMap, tensorMapToFixedWidthJson } from '@firn/ml';
import type { Workload, WorkloadInput } from '../workload.ts';
import { paddedJson } from './paddedJson.ts';

/** Loaded sessions by model artifact id; the framework only passes an id whose bytes it authenticated. */
const sessions = new Map<Hex, Promise<OnnxModel>>();
const MAX_SESSIONS = 4;

function session(model: WorkloadInput): Promise<OnnxModel> {
  const hit = sessions.get(model.artifactId);
  if (hit !== undefined) return hit;
  const p = loadOnnxModel(model.bytes);
  // A model that fails to load is not cached, so a retry loads it again.
  p.catch(() => sessions.delete(model.artifactId));
  sessions.set(model.artifactId, p);
  while (sessions.size > MAX_SESSIONS) {
    const oldest = sessions.keys().next().value as Hex;
    const old = sessions.get(oldest);
    sessions.delete(oldest);
    void old?.then((m) => m.release()).catch(() => undefined);
  }
  return p;
}

function role(inputs: readonly WorkloadInput[], name: string): WorkloadInput {
  const i = inputs.find((x) => x.role === name);
  if (i === undefined) throw new FirnError('E_JOB_INVALID', `inference needs an input with role "${name}"`);
  return i;
}

/**
 * Inference: role `model` (ONNX bytes) and role `input` (tensor JSON); one output, role `output`
 * (tensor JSON of every model output, each element at its type's fixed width, then spaces up to
 * its Padmé bucket of at least 4 KiB: the output's sealed size, which the host stores and records,
 * is a bucket of its names, types and dims and never depends on its values:
 * docs/decisions/1851-first-party-outputs-sized-by-shape.md).
 * workUnits = total number of input tensor elements.
 * Params: none are read (an empty object is expected, but params still enter the workload hash).
 */
export const inference: Workload = async (ctx) => {
  const allowed = new Set(['model', 'input']);
  for (const i of ctx.inputs)
    if (!allowed.has(i.role))
      throw new FirnError('E_JOB_INVALID', `inference does not take an input with role "${i.role}"`);
  const modelInput = role(ctx.inputs, 'model');
  const tensors = parseTensorMap(role(ctx.inputs, 'input').bytes);
  const model = await session(modelInput);
  ctx.progress({ stage: 'model-ready' });
  const outputs = await model.run(tensors);
  let elements = 0n;
  for (const t of Object.values(tensors)) elements += BigInt(t.data.length);
  ctx.progress({ stage: 'inference-done' });
  return {
    outputs: [
      {
        role: 'output',
        contentType: 'application/json',
        bytes: paddedJson(tensorMapToFixedWidthJson(outputs)),
      },
    ],
    workUnits: elements,
    report: { outputNames: Object.keys(outputs) },
  };
};
