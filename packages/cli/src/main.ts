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
import { CommanderError } from 'commander';
import { cliErrorBody, exitCodeOf, lastPrintedError } from './output.ts';

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

// One error format per output mode: with --json every error is `{"error": {code, message}}` on
// stdout (usage errors too), otherwise one `error: CODE: message` line on stderr. Exit codes: README.
const json = process.argv.includes('--json');
program.configureOutput({
  outputError: (str, write) =>
    json
      ? process.stdout.write(
          `${JSON.stringify({ error: { code: 'E_INVALID_INPUT', message: str.replace(/^error: /, '').trim() } })}\n`,
        )
      : write(str),
});
const override = (c: Command): void => {
  c.exitOverride();
  if (json) c.configureOutput(program.configureOutput());
  for (const s of c.commands) override(s);
};
override(program);

program
  .parseAsync(process.argv)
  .then(() => {
    // Commands print their own errors and set exit code 1; give it the documented meaning.
    if (process.exitCode === 1 && lastPrintedError !== undefined)
      process.exitCode = exitCodeOf(lastPrintedError);
  })
  .catch((e: unknown) => {
    if (e instanceof CommanderError) {
      // Help and version are not errors; a usage error is "fix the command" (3).
      process.exit(e.exitCode === 0 ? 0 : 3);
    }
    const body = cliErrorBody(e);
    if (process.env['FIRN_DEBUG'] === '1') process.stderr.write(`${(e as Error)?.stack}\n`);
    if (json) process.stdout.write(`${JSON.stringify({ error: body })}\n`);
    else
      process.stderr.write(
        `error: ${body.code}: ${body.code === 'E_INTERNAL' ? `${String(e)} (FIRN_DEBUG=1 shows where)` : body.message}\n`,
      );
    process.exit(exitCodeOf(e));
  });
