// A process that holds a job in flight under guardJobInFlight, as `firn infer|train|run` does
// after posting, for jobInterrupt.test.ts to signal. Env: RPC, DEPLOYMENT (JSON), KEY, JOB (none:
// not posted yet).
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../../../tsconfig.json', import.meta.url)) });
const { guardJobInFlight, jobReclaimCommand, jobResultCommand } = await import('./jobInterrupt.ts');
const { deploymentFromJson } = await import('./chainArgs.ts');
const env = process.env;
const flags = { devnet: 'state.json', keyFile: 'requester.key' };
const guard = guardJobInFlight({
  chain: {
    rpcUrl: env.RPC,
    deployment: deploymentFromJson(JSON.parse(env.DEPLOYMENT)),
    requesterKey: env.KEY,
  },
  resultCommand: (id) => jobResultCommand(id, { ...flags, out: '/tmp/out.json' }),
  reclaimCommand: (id) => jobReclaimCommand(id, flags),
  stderr: process.stderr,
});
if (env.JOB) guard.posted(env.JOB);
// A postJob sent, its receipt not handed over yet (decision 1665): {hash, expectedJobId, fromBlock}.
if (env.SENT) {
  const t = JSON.parse(env.SENT);
  guard.sent({ ...t, fromBlock: BigInt(t.fromBlock) });
}
setInterval(() => {}, 1000);
process.stdout.write('armed\n');
