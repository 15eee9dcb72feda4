/**
 * Whether a throw of `TextDecoder` (fatal) or `JSON.parse` is its verdict on the bytes (invalid
 * UTF-8, a JSON syntax error) rather than a failure to run at all (an allocation that fails when
 * the host starves the enclave of memory). Only a verdict may become a typed data, input or model
 * error: those codes the enclave signs as the requester's own failure
 * (docs/decisions/1595-attested-job-failure.md); anything else must stay untyped (E_JOB_FAILED).
 */
export function isDecodeVerdict(e: unknown): boolean {
  return (
    e instanceof SyntaxError ||
    (e instanceof TypeError && (e as { code?: unknown }).code === 'ERR_ENCODING_INVALID_ENCODED_DATA')
  );
}
