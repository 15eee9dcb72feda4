import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { bytesToHex, concatBytes, encodeFields, FirnError, hexToBytes, TAGS, utf8 } from '@firn/core';

/**
 * The enclave's notion of "now" (docs/decisions/0852-enclave-time-floor.md). The host supplies
 * the clock, so the enclave keeps a monotonic floor: the largest of every host time it has been
 * given and every chain time a verified grant carried (`issuedAt`, signed by its owner). Expiry
 * checks use max(host clock, floor), so rewinding the host clock never revives an expired grant
 * or session once the enclave has seen a later time. A signed chain time raises the floor at
 * most to MAX_AHEAD_SECONDS past the current host time, however many grants carry it, so one
 * requester cannot expire everyone else's grants by signing a far-future time. The floor is kept in a sealed state blob the host stores and passes
 * back to `init`; a host that hands back an older blob (rollback) is not detected here.
 */

export const MAX_AHEAD_SECONDS = 300;
/** A new sealed state is emitted at most this often for host-clock advances (grant times always). */
export const STATE_EMIT_SECONDS = 60;
const MAX_STATE_HEX = 512;

export interface TrustedTime {
  /** Effective now (unix seconds): max(hostNow, floor); raises the floor to hostNow. */
  now(hostNow: number): number;
  /** Raise the floor to a verified, owner-signed chain time, capped at the last host time + MAX_AHEAD_SECONDS. */
  observe(chainTime: number): void;
  /** The current floor, unix seconds (0 before anything was seen). */
  floor(): number;
  /** Restore a sealed state blob from `init` (undefined/null: none); E_SEAL when it does not open. */
  restore(blob: unknown, sealingKey: Uint8Array): void;
  /** The current state, sealed; undefined before `restore` gave the sealing key. */
  seal(): SealedState | undefined;
}

/** The sealed time state as the host stores it: AES-256-GCM under the sealing key. */
export interface SealedState {
  v: 1;
  iv: string;
  ct: string;
}

function aad(measurement: Uint8Array): Uint8Array {
  return encodeFields([utf8(TAGS.enclaveState), measurement]);
}

export function createTrustedTime(opts: {
  measurement: Uint8Array;
  /** Called with a fresh sealed state when the floor advanced (the host persists it). */
  onAdvance?: (state: SealedState) => void;
}): TrustedTime {
  let floor = 0;
  // The host time given with the latest request: signed chain times may lead it by MAX_AHEAD_SECONDS.
  let lastHost = 0;
  let key: Uint8Array | undefined;
  let emittedFloor = 0;

  const seal = (): SealedState | undefined => {
    if (key === undefined) return undefined;
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(aad(opts.measurement));
    const pt = utf8(JSON.stringify({ v: 1, floor }));
    const ct = concatBytes(c.update(pt), c.final(), c.getAuthTag());
    return { v: 1, iv: bytesToHex(iv), ct: bytesToHex(ct) };
  };
  const raise = (t: number, force: boolean) => {
    if (!(t > floor)) return;
    floor = t;
    if (force || floor - emittedFloor >= STATE_EMIT_SECONDS) {
      const s = seal();
      if (s !== undefined) {
        emittedFloor = floor;
        opts.onAdvance?.(s);
      }
    }
  };

  return {
    now(hostNow) {
      if (!Number.isSafeInteger(hostNow) || hostNow < 0)
        throw new FirnError('E_INTERNAL', 'the host clock is not unix seconds');
      lastHost = hostNow;
      raise(hostNow, false);
      return Math.max(hostNow, floor);
    },
    observe(chainTime) {
      if (!Number.isSafeInteger(chainTime) || chainTime <= 0) return;
      raise(Math.min(chainTime, lastHost + MAX_AHEAD_SECONDS), true);
    },
    floor: () => floor,
    restore(blob, sealingKey) {
      key = sealingKey;
      if (blob === undefined || blob === null) return;
      const b = blob as Partial<SealedState>;
      if (b.v !== 1 || typeof b.iv !== 'string' || typeof b.ct !== 'string' || b.ct.length > MAX_STATE_HEX)
        throw new FirnError('E_SEAL', 'sealed state blob is malformed');
      let state: { v?: unknown; floor?: unknown };
      try {
        const ct = hexToBytes(b.ct);
        const iv = hexToBytes(b.iv);
        // The host hands this blob in: only a 12-byte IV and a whole 16-byte tag (Node would take
        // a 4-byte tag, which a host that calls init again and again forges in 2^32 tries).
        if (iv.length !== 12 || ct.length < 17) throw new Error('iv or tag length');
        const d = createDecipheriv('aes-256-gcm', sealingKey, iv, { authTagLength: 16 });
        d.setAAD(aad(opts.measurement));
        d.setAuthTag(ct.subarray(ct.length - 16));
        const pt = concatBytes(d.update(ct.subarray(0, ct.length - 16)), d.final());
        state = JSON.parse(new TextDecoder().decode(pt)) as typeof state;
      } catch (e) {
        throw new FirnError('E_SEAL', 'sealed state blob does not open with this enclave sealing key', {
          cause: e,
        });
      }
      if (
        state.v !== 1 ||
        typeof state.floor !== 'number' ||
        !Number.isSafeInteger(state.floor) ||
        state.floor < 0
      )
        throw new FirnError('E_SEAL', 'sealed state has no valid time floor');
      floor = Math.max(floor, state.floor);
      emittedFloor = floor;
    },
    seal,
  };
}
