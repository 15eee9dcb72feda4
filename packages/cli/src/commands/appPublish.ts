import { allowMeasurementCall, isMeasurementAllowed } from '@firn/chain';
import { type Hex, TEE_TYPES } from '@firn/core';
import type { Command } from 'commander';
import { printError, printJson } from '../output.ts';
import { type GovOptions, type GovResult, runGovernance } from './gov.ts';
import { appMeasurement } from './run.ts';

export interface AppPublishResult {
  app: string;
  measurement: Hex;
  /** Already on the allow-list: nothing was scheduled. */
  alreadyAllowed: boolean;
  governance?: GovResult;
}

/**
 * `firn app publish DIR`: build the app (reproducibly: the measurement any machine gets from these
 * sources) and allow-list its measurement for the simulated TEE through governance (schedule on
 * the timelock, wait its delay, execute; the same path as `firn gov allow-measurement`). Nodes may
 * then register with the app's image and requesters' SDKs accept them. An app never allow-listed
 * gets no job: nodes cannot register it and requesters refuse it (issue 12).
 * Raises what buildAppImage raises for the folder, and ChainRevertedError for a key without the
 * proposer role.
 */
export async function appPublishCommand(
  dir: string,
  o: GovOptions & { measurement?: string },
): Promise<AppPublishResult> {
  const measurement = await appMeasurement(o.measurement ?? dir);
  const already = new Error('already allow-listed');
  try {
    const governance = await runGovernance(o, 'allow-measurement', async (c) => {
      const args = { teeType: TEE_TYPES.simulated, measurement };
      // Nothing to schedule: publishing twice is not an error.
      if (await isMeasurementAllowed(c, args)) throw already;
      return { calls: [allowMeasurementCall(c.addresses, args)], details: { app: dir, measurement } };
    });
    return { app: dir, measurement, alreadyAllowed: false, governance };
  } catch (e) {
    if (e === already) return { app: dir, measurement, alreadyAllowed: true };
    throw e;
  }
}

/** Add `publish` under the `app` command that `registerApp` created. */
export function registerAppPublish(program: Command): void {
  const app =
    program.commands.find((c) => c.name() === 'app') ?? program.command('app').description('firn apps');
  app
    .command('publish <dir>')
    .description("allow-list the app's measurement through governance (timelock), so nodes may host it")
    .option('--devnet <file>', 'devnet state file (its deployer proposes unless --key-file)')
    .option('--rpc <url>', 'JSON-RPC URL of the chain')
    .option('--registry <address>', 'registry contract')
    .option('--deployment <file>', 'deployment JSON')
    .option('--key-file <file>', 'proposer/executor key file (or env FIRN_GOVERNANCE_KEY)')
    .option('--no-mine', 'do not mine blocks while waiting (a chain that produces blocks by itself)')
    .option('--json', 'print JSON')
    .action(async (dir: string, o: GovOptions) => {
      try {
        const r = await appPublishCommand(dir, o);
        if (o.json) printJson(r);
        else
          process.stdout.write(
            r.alreadyAllowed
              ? `app ${dir}: measurement ${r.measurement} is already allow-listed\n`
              : `app ${dir}: measurement ${r.measurement} allow-listed (operation ${r.governance?.operationId})\n`,
          );
      } catch (e) {
        printError(e, o.json === true);
        process.exitCode = 1;
      }
    });
}
