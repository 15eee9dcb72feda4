import { Command } from 'commander';
import { registerApp } from './commands/app.ts';
import { registerArtifact } from './commands/artifact.ts';
import { registerAttestVerify } from './commands/attestVerify.ts';
import { registerAttestVerifyGpu } from './commands/attestVerifyGpu.ts';
import { registerDashboard } from './commands/dashboard.ts';
import { registerData } from './commands/data.ts';
import { registerDeploy } from './commands/deploy.ts';
import { registerDevnet } from './commands/devnet.ts';
import { registerGov } from './commands/gov.ts';
import { registerInfer } from './commands/infer.ts';
import { registerJob } from './commands/job.ts';
import { registerKms } from './commands/kms.ts';
import { registerNode } from './commands/node.ts';
import { registerNodes } from './commands/nodes.ts';
import { registerProof } from './commands/proof.ts';
import { registerRewards } from './commands/rewards.ts';
import { registerRun } from './commands/run.ts';
import { registerAppPublish } from './commands/appPublish.ts';
import { registerTrain } from './commands/train.ts';
import { registerVerifier } from './commands/verifier.ts';
import { runProgram } from './runProgram.ts';

const program = new Command()
  .name('firn')
  .description('firn: confidential compute nodes, attested and paid on chain')
  .version('0.1.0');

registerDevnet(program);
registerDashboard(program);
registerDeploy(program);
registerNode(program);
registerVerifier(program);
registerKms(program);
registerNodes(program);
registerInfer(program);
registerJob(program);
registerTrain(program);
registerProof(program);
registerArtifact(program);
registerApp(program);
registerGov(program);
registerRewards(program);
registerData(program);
registerRun(program);
registerAppPublish(program);
const attest = program.command('attest').description('verify attestation evidence');
registerAttestVerify(attest);
registerAttestVerifyGpu(attest);

runProgram(program);
