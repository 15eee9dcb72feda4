import { createFirnClients, firnJobMarketAbi, firnTransport } from '@firn/chain';
import { type ProofCheck, verifyWorkProof } from '@firn/client';
import { FirnError, MAX_WORK_PROOF_JSON_BYTES, parseWorkProofJson } from '@firn/core';
import type { Command } from 'commander';
import { createPublicClient, isAddress, zeroAddress } from 'viem';
import { resolveChain } from '../chainArgs.ts';
import { printError, printJson } from '../output.ts';
import { readUserFileSync } from '../readUserFile.ts';
import { namingFile } from './infer.ts';

export interface ProofVerifyOptions {
  /** The RPC URL; or --devnet / --deployment, which also pin the market. */
  rpc?: string;
  devnet?: string;
  deployment?: string;
  /** Pin the job market; without it the market named in the proof is used (and reported). */
  market?: string;
  json?: boolean;
}

/**
 * `firn proof verify`: check a PROOF.json against the chain (signature by the registered Active
 * enclave, allow-listed measurement, the job's on-chain commitments). See verifyWorkProof for
 * what this does and does not prove.
 */
export async function proofVerifyCommand(
  file: string,
  o: ProofVerifyOptions,
): Promise<ProofCheck & { jobMarket: string; marketPinned: boolean }> {
  const text = readUserFileSync(file, 'proof', MAX_WORK_PROOF_JSON_BYTES).toString('utf8');
  // Several files go into this command: an error about the proof's content names the file.
  const parsed = namingFile('proof file', file, () => parseWorkProofJson(text));
  if (o.devnet !== undefined || o.deployment !== undefined) {
    // A devnet state or deployment file names the RPC and pins the market the proof must be for.
    const chain = await resolveChain(o);
    o = { ...o, rpc: o.rpc ?? chain.rpcUrl, market: o.market ?? chain.deployment.jobMarket };
  }
  if (o.rpc === undefined)
    throw new FirnError('E_INVALID_INPUT', 'pass --rpc URL, --devnet STATE.json or --deployment FILE');
  const rpc = o.rpc;
  if (o.market !== undefined && !isAddress(o.market))
    throw new FirnError('E_INVALID_INPUT', '--market is not an address');
  const market = (o.market ?? parsed.domain.jobMarket) as `0x${string}`;
  const pub = createPublicClient({ transport: firnTransport(rpc) });
  const chainId = await pub.getChainId();
  const registry = await pub.readContract({
    address: market,
    abi: firnJobMarketAbi,
    functionName: 'registry',
  });
  const clients = createFirnClients(rpc, undefined, {
    chainId,
    registry,
    verifierSet: zeroAddress,
    jobMarket: market,
    dataLedger: zeroAddress,
    deployBlock: 0n,
  });
  const check = await verifyWorkProof(clients, text);
  return { ...check, jobMarket: market, marketPinned: o.market !== undefined };
}

export function registerProof(program: Command): void {
  const proof = program.command('proof').description('Work Proofs');
  proof
    .command('verify <file>')
    .description('verify a PROOF.json against the chain')
    .option('--rpc <url>', 'RPC URL')
    .option('--devnet <file>', 'devnet state file (RPC and market)')
    .option('--deployment <file>', 'deployment JSON (RPC and market)')
    .option('--market <address>', 'expected job market (recommended: pins the EIP-712 domain)')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, o: ProofVerifyOptions) => {
      try {
        const r = await proofVerifyCommand(file, o);
        if (o.json) printJson(r);
        else if (r.ok)
          process.stdout.write(
            `proof valid: signed by ${r.signer}, job ${r.jobStatus}${r.marketPinned ? '' : ` (market ${r.jobMarket} taken from the proof; pass --market to pin it)`}\n`,
          );
        else process.stdout.write(`proof INVALID:\n${r.reasons.map((x) => `  - ${x}`).join('\n')}\n`);
        if (!r.ok) process.exitCode = 1;
      } catch (e) {
        printError(e, o.json === true);
        process.exitCode = 1;
      }
    });
}
