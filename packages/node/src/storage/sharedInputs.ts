import { type Hex, TooLargeError } from '@firn/core';
import { type ArtifactStore, DEFAULT_MAX_ARTIFACT_BYTES } from './artifactStore.ts';
import type { QuotaLedger } from './quota.ts';
import type { S3ArtifactStore } from './s3ArtifactStore.ts';

/**
 * Copy a job's inputs that are missing here from the shared artifact store (`--artifact-store`)
 * into the node's local store, charging each to `payer` (the job's requester on chain) against
 * the same disk quotas as an upload (storage/quota.ts).
 *
 * For each id: the object's size is read first (HEAD) and reserved against the payer's and the
 * node's quota, so a refusal (E_QUOTA_EXCEEDED, HTTP 413, naming the limit and the option that
 * raises it) writes no byte. The copy is then capped at that declared size: a bucket that sends
 * more than it declared is cut (E_TOO_LARGE) and the partial file removed, so the reservation
 * bounds what lands on disk. Inputs already stored here, or absent from the shared store, are
 * skipped (the caller reports a missing input). Other errors: E_TOO_LARGE over `maxBytes`,
 * E_ARTIFACT_TAMPERED, E_UNAVAILABLE (see S3ArtifactStore.copyToLocal); a failed copy releases its
 * reservation, and inputs copied before it stay stored and charged.
 */
export async function fetchSharedInputs(
  shared: S3ArtifactStore,
  local: ArtifactStore,
  quota: QuotaLedger,
  ids: readonly Hex[],
  payer: string,
  maxBytes = DEFAULT_MAX_ARTIFACT_BYTES,
): Promise<void> {
  for (const id of ids) {
    if (local.has(id)) continue;
    const size = await shared.size(id);
    if (size === undefined) continue;
    if (size > maxBytes) throw new TooLargeError('artifact', size, maxBytes);
    const reservation = quota.reserve(payer, size, `input artifact ${id} from the shared artifact store`);
    try {
      const r = await shared.copyToLocal(id, local, size);
      reservation.commit(r.created, r.size, id);
    } catch (e) {
      reservation.release();
      throw e;
    }
  }
}
