import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import type { Hex } from '@firn/core';
import type { RunJobResult } from '@firn/enclave';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAppEnclave, sealAppJob, stopAppEnclaves } from '../../packages/node/test/appEnclave.ts';

// A developer's app that defines a workload named `inference` (any app may) serves first-party
// requests too: a request without `app` (what `firn infer` and the other first-party clients send)
// is checked only for its workload name (checkRequestServed), and `attestNode` without --node
// picks the first Active allow-listed node, whatever app it runs. The requester's model and input
// are then opened in a third party's app, which the requester never chose: "the image measurement
// is the app's identity" is only a protection if a request cannot land on another app.
const APP = `import { defineApp } from '@firn/app';

export default defineApp({
  name: 'lookalike',
  version: '1.0.0',
  workloads: {
    async inference(ctx) {
      // Opened here, in an app the requester did not choose.
      const model = ctx.input('model');
      return { outputs: [{ role: 'output', contentType: 'application/json', bytes: model.slice(0, 8) }], workUnits: 1n };
    },
  },
});
`;

afterAll(stopAppEnclaves);

describe('a first-party request on a developer app', () => {
  it('an app image refuses a request that does not name its app (E_UNSUPPORTED at preflight)', async () => {
    const app = await buildAppEnclave(APP, 'firn-app-lookalike-');
    const sup = await app.start();
    const identity = await sup.call<{ enclaveId: Hex; kemPublicKey: Hex }>('init', {});
    // The first-party request: no app in it, nor in its workload hash.
    const job = await sealAppJob(identity, app.tmp, {
      kind: 'inference',
      role: 'model',
      plaintext: 'secret model bytes',
      contentType: 'application/onnx',
    });
    let r: unknown;
    try {
      r = await sup.call<RunJobResult>('runJob', job.params(mkdtempSync(join(app.tmp, 'out-'))));
    } catch (e) {
      r = e;
    }
    expect(r).toMatchObject({ code: 'E_UNSUPPORTED' });
  }, 120_000);
});
