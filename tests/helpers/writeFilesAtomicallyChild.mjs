// A writer for tests/attacks/write-files-atomically-signal.test.ts: writeFilesAtomically (the output
// write of `firn infer`, `train` and `job result`) of SIZE bytes to OUT0 and OUT1, in a process of its own.
// Usage: node writeFilesAtomicallyChild.mjs OUT SIZE
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../../tsconfig.json', import.meta.url)) });
const { writeFilesAtomically } = await import('../../packages/cli/src/commands/infer.ts');
const [out, size] = process.argv.slice(2);
const bytes = Buffer.alloc(Number(size), 0x41);
for (let i = 0; i < 2; i++) writeFilesAtomically([{ path: `${out}${i}`, bytes }]);
