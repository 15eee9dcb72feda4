// A writer for tests/attacks/cli-run-partial-outputs.test.ts: `firn run`'s output write
// (writeRunOutputs) of two outputs of SIZE bytes of a marker text into OUT, in a process of its own.
// Usage: node writeRunOutputsChild.mjs OUT SIZE
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../../tsconfig.json', import.meta.url)) });
const { writeRunOutputs } = await import('../../packages/cli/src/commands/run.ts');
const { artifactId } = await import('@firn/crypto');
const [out, size] = process.argv.slice(2);
const bytes = Buffer.alloc(Number(size), 'requester plaintext marker ');
const sealed = new Uint8Array([1, 2, 3]);
const roles = ['first', 'second'];
writeRunOutputs(out, {
  plan: {},
  outputs: roles.map((role) => ({ role, contentType: 'application/octet-stream', bytes })),
  sealedOutputs: roles.map((role) => ({ role, artifactId: artifactId(sealed), sealed })),
  proof: {},
  records: [],
});
