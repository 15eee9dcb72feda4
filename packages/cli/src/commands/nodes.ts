import { createFirnClients, type FirnNode, listNodes, NodeStatus } from '@firn/chain';
import { randomBytes } from 'node:crypto';
import { bytesToHex, parseEvidenceBundle, readBodyCapped, teeTypeName } from '@firn/core';
import { fetchFromNode } from '@firn/core/fetchFromNode';
import type { Command } from 'commander';
import { formatEther } from 'viem';
import { resolveChain } from '../chainArgs.ts';
import { printError, printJson, short, table } from '../output.ts';

export function nodeRow(n: FirnNode): Record<string, string> {
  let tee: string;
  try {
    tee = teeTypeName(n.teeType);
  } catch {
    tee = String(n.teeType);
  }
  return {
    enclaveId: n.enclaveId,
    teeType: tee,
    measurement: n.measurement,
    status: NodeStatus[n.status] ?? String(n.status),
    stake: formatEther(n.stake),
    endpoint: n.endpoint,
    enclaveAddress: n.enclaveAddress,
    operator: n.operator,
  };
}

/**
 * How many GPUs a node's evidence carries (composite CPU+GPU evidence), asked with a fresh nonce:
 * null when the node does not answer within `timeoutMs`. The count is what the node's evidence
 * bundle lists, parsed but not verified here; the verifiers checked it at registration, and the
 * SDK verifies it again before a job (`firn attest verify-gpu` checks it by hand).
 */
export async function nodeGpuCount(endpoint: string, timeoutMs = 3000): Promise<number | null> {
  try {
    // Through the client for node-chosen URLs (decision 1832): a redirect is refused, never
    // followed. Private addresses are allowed: the user lists the nodes of the chain it chose, a
    // devnet's on 127.0.0.1 included.
    const res = await fetchFromNode(
      new URL('/v1/attestation', endpoint),
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ nonce: bytesToHex(new Uint8Array(randomBytes(32))) }),
      },
      { timeoutMs, what: 'the attestation request', allowPrivateEndpoints: true },
    );
    if (!res.ok) return null;
    const body = await readBodyCapped(res, 4 * 1024 * 1024, 'evidence');
    return parseEvidenceBundle(body).gpu?.length ?? 0;
  } catch {
    return null;
  }
}

export function renderNodeTable(nodes: FirnNode[], gpus?: (number | null)[]): string {
  const gpuCell = (g: number | null | undefined) =>
    g === undefined ? undefined : g === null ? '?' : g > 0 ? `yes (${g})` : 'no';
  return table(
    ['ENCLAVE ID', 'TEE', 'MEASUREMENT', 'STATUS', 'STAKE (ETH)', ...(gpus ? ['GPU'] : []), 'ENDPOINT'],
    nodes.map((n, i) => {
      const r = nodeRow(n);
      const g = gpus ? [gpuCell(gpus[i])!] : [];
      return [short(r.enclaveId!), r.teeType!, short(r.measurement!), r.status!, r.stake!, ...g, r.endpoint!];
    }),
  );
}

export function registerNodes(program: Command): void {
  program
    .command('nodes')
    .description('read the registry')
    .command('list')
    .description(
      'list registered nodes (GPU: how many GPUs the evidence of an Active node carries; ? when it does not answer)',
    )
    .option('--rpc <url>', 'JSON-RPC URL')
    .option('--registry <address>', 'registry contract')
    .option('--market <address>', 'job market contract')
    .option('--devnet <file>', 'devnet state file')
    .option('--deployment <file>', 'deployment file (firn deploy)')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        rpc?: string;
        registry?: string;
        market?: string;
        devnet?: string;
        deployment?: string;
        json?: boolean;
      }) => {
        try {
          const chain = await resolveChain(o);
          const nodes = await listNodes(createFirnClients(chain.rpcUrl, undefined, chain.deployment));
          const gpus = await Promise.all(
            nodes.map((n) =>
              n.status === NodeStatus.Active && n.endpoint ? nodeGpuCount(n.endpoint) : null,
            ),
          );
          if (o.json) printJson(nodes.map((n, i) => ({ ...nodeRow(n), gpus: gpus[i] })));
          else process.stdout.write(`${renderNodeTable(nodes, gpus)}\n`);
        } catch (e) {
          printError(e, Boolean(o.json));
          process.exitCode = 1;
        }
      },
    );
}
