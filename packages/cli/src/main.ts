import { Command } from 'commander';
import { registerArtifact } from './commands/artifact.ts';
import { registerAttestVerify } from './commands/attestVerify.ts';
import { registerAttestVerifyGpu } from './commands/attestVerifyGpu.ts';
import { registerDevnet } from './commands/devnet.ts';
import { registerGov } from './commands/gov.ts';
import { registerInfer } from './commands/infer.ts';
import { registerJob } from './commands/job.ts';
import { registerKms } from './commands/kms.ts';
import { registerNode } from './commands/node.ts';
import { registerNodes } from './commands/nodes.ts';
import { registerProof } from './commands/proof.ts';
import { registerRewards } from './commands/rewards.ts';
import { registerTrain } from './commands/train.ts';
import { registerVerifier } from './commands/verifier.ts';
import { runProgram } from './runProgram.ts';

const program = new Command()
  .name('firn')
  .description('firn: confidential compute nodes, attested and paid on chain')
  .version('0.1.0');

registerDevnet(program);
registerNode(program);
registerVerifier(program);
registerKms(program);
registerNodes(program);
registerInfer(program);
registerJob(program);
registerTrain(program);
registerProof(program);
registerArtifact(program);
registerGov(program);
registerRewards(program);
const attest = program.command('attest').description('verify attestation evidence');
registerAttestVerify(attest);
registerAttestVerifyGpu(attest);

runProgram(program);
