import { redactRpcUrl } from '@firn/core';

export { hasCredentials, REDACTED, redactRpcUrl, redactUrlsIn } from '@firn/core';

/**
 * A command's options as the job journal keeps them (decision 1686): `rpc` and `alsoRpc` through
 * redactRpcUrl, so no API key or password of an RPC URL is ever on disk; a later command that needs
 * the RPC takes it from --rpc, FIRN_RPC_URL or the devnet/deployment file.
 */
export function journalOptions<T extends { rpc?: string | undefined; alsoRpc?: string[] | undefined }>(
  o: T,
): T {
  return {
    ...o,
    ...(o.rpc !== undefined ? { rpc: redactRpcUrl(o.rpc) } : {}),
    ...(o.alsoRpc !== undefined ? { alsoRpc: o.alsoRpc.map(redactRpcUrl) } : {}),
  };
}
