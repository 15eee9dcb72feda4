import { type Command, CommanderError } from 'commander';
import { cliErrorBody, exitCodeOf, lastPrintedError } from './output.ts';

/**
 * Parse argv and run the command, with one error format per output mode: with --json every error
 * is `{"error": {code, message}}` on stdout (usage errors too), otherwise one
 * `error: CODE: message` line on stderr. Exit codes follow the README's "Exit codes" table.
 */
export function runProgram(program: Command): void {
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
}
