/**
 * Serve recorded Intel PCS responses on 127.0.0.1 until Ctrl-C, for trying `firn attest verify
 * --pccs URL` by hand:
 *
 *   node packages/cli/bin/run-ts.mjs packages/attestation/test/collateral/serveLocalPcs.ts \
 *     packages/attestation/vectors/pcs/sgx-00606a000000 [--port 8081] [--crl der|pem|hex]
 *
 * Prints the base URL on stdout. One folder per run when two snapshots carry different PCK CRLs.
 */
import { resolve } from 'node:path';
import { startLocalPcs } from './localPcs.ts';

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const crl = opt('--crl') as 'der' | 'pem' | 'hex' | undefined;
const port = opt('--port');
if (args.length === 0) {
  process.stderr.write('usage: serveLocalPcs.ts VECTOR_DIR... [--port N] [--crl der|pem|hex]\n');
  process.exit(2);
}
const pcs = await startLocalPcs({
  dirs: args.map((a) => resolve(a)),
  ...(crl === undefined ? {} : { crlEncoding: crl }),
  ...(port === undefined ? {} : { port: Number(port) }),
});
process.stdout.write(`${pcs.url}\n`);
const stop = () => {
  void pcs.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
