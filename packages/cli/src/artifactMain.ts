import { Command } from 'commander';
import { registerArtifact } from './commands/artifact.ts';
import { runProgram } from './runProgram.ts';

// `firn artifact …` alone: it loads only the sealing code, not the chain, attestation and ML
// stacks, so sealing or opening a large file runs in a small process (README: under 200 MB for a
// 300 MB file). bin/firn.mjs picks this entry for the `artifact` command, after starting this
// process under the allocator settings of bin/allocator.mjs (decision 1325).
const program = new Command().name('firn').version('0.1.0');
registerArtifact(program);
runProgram(program);
