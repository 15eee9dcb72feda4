import { readFileSync } from 'node:fs';
import { createFirnClients, firnJobMarketAbi } from '@firn/chain';
import { loadDevnetState, type ProofCheck, verifyWorkProof } from '@firn/client';
import { FirnError, MAX_WORK_PROOF_JSON_BYTES, parseWorkProofJson } from '@firn/core';
import type { Command } from 'commander';
import { createPublicClient, http, isAddress, zeroAddress } from 'viem';
import { printError, printJson } from '../output.ts';

export interface ProofVerifyOptions {
  rpc?: string;
  /** A devnet state file: its RPC URL and job market (pinned) unless --rpc / --market say otherwise. */
  devnet?: string;
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
  const text = readFileSync(file, 'utf8');
  if (text.length > MAX_WORK_PROOF_JSON_BYTES) throw new FirnError('E_TOO_LARGE', 'proof file too large');
  const parsed = parseWorkProofJson(text);
  if (o.devnet !== undefined) {
    const state = loadDevnetState(o.devnet);
    o = { ...o, rpc: o.rpc ?? state.rpcUrl, market: o.market ?? state.contracts.jobMarket };
  }
  if (o.rpc === undefined) throw new FirnError('E_INVALID_INPUT', 'pass --rpc URL or --devnet STATE.json');
  if (o.market !== undefined && !isAddress(o.market))
    throw new FirnError('E_INVALID_INPUT', '--market is not an address');
  const market = (o.market ?? parsed.domain.jobMarket) as `0x${string}`;
  const rpc = o.rpc;
  const pub = createPublicClient({ transport: http(rpc) });
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
    .option('--devnet <file>', 'devnet state file (its RPC URL and job market)')
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
