import { createFirnClients, type FirnNode, listNodes, NodeStatus } from '@firn/chain';
import { teeTypeName } from '@firn/core';
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

export function renderNodeTable(nodes: FirnNode[]): string {
  return table(
    ['ENCLAVE ID', 'TEE', 'MEASUREMENT', 'STATUS', 'STAKE (ETH)', 'ENDPOINT'],
    nodes.map((n) => {
      const r = nodeRow(n);
      return [short(r.enclaveId!), r.teeType!, short(r.measurement!), r.status!, r.stake!, r.endpoint!];
    }),
  );
}

export function registerNodes(program: Command): void {
  program
    .command('nodes')
    .description('read the registry')
    .command('list')
    .description('list registered nodes')
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
          if (o.json) printJson(nodes.map(nodeRow));
          else process.stdout.write(`${renderNodeTable(nodes)}\n`);
        } catch (e) {
          printError(e, Boolean(o.json));
          process.exitCode = 1;
        }
      },
    );
}
