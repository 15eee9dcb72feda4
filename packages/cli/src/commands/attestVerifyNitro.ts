import {
  type AttestationPolicy,
  evaluateEvidence,
  loadAttestationPolicy,
  MAX_NITRO_DOCUMENT_BYTES,
  nitroVerifier,
  type VerifiedEvidence,
} from '@firn/attestation';
import { bytesToHex, FirnError, toErrorBody } from '@firn/core';
import { readUserFile } from '../readUserFile.ts';
import { parseAtArg } from '../parseAtArg.ts';

export interface AttestVerifyNitroOptions {
  /**
   * The attestation document: raw CBOR (COSE_Sign1), its hex or base64 text, or a firn evidence
   * bundle JSON with teeType "nitro" (its quote is the document).
   */
  evidence: string;
  /** Verification time, unix seconds. */
  at: string | number;
  /** Trust anchor (PEM or DER) instead of the pinned AWS Nitro Enclaves Root G1. */
  root?: string;
  /** Policy: firn's policy JSON (its nitro section sets the freshness). */
  policy?: string;
  /** Without --policy: accept a debug enclave (PCR0..2 all zero); it is reported either way. */
  allowDebug?: boolean;
  /** Without --policy: largest accepted document age at --at, seconds. */
  maxAge?: string | number;
}

const MAX_EVIDENCE_FILE = 4 * MAX_NITRO_DOCUMENT_BYTES;
const MAX_SMALL_FILE = 256 << 10;

/**
 * Errors that are a mistake in the command (a missing, unreadable or oversized file): the README's
 * exit 3, not the "did not verify" 1 that malformed evidence gets.
 */
const commandMistakes = new WeakSet<object>();

/** A user-named file through the one capped reader (no FIFOs or devices; at most cap + 1 bytes read). */
const readCapped = (path: string, cap: number, what: string): Promise<Buffer> =>
  readUserFile(path, what, cap).catch((e: unknown) => {
    if (typeof e === 'object' && e !== null) commandMistakes.add(e);
    throw e;
  });

/**
 * The document bytes from a file: raw CBOR (a COSE_Sign1 array, 0x84, or tagged, 0xd2), hex (with
 * or without 0x), base64, or an evidence bundle JSON whose teeType is nitro. E_INVALID_INPUT else.
 */
export function nitroDocumentFromFile(buf: Buffer): Uint8Array {
  if (buf[0] === 0x84 || buf[0] === 0xd2) return new Uint8Array(buf);
  const text = buf.toString('latin1').trim();
  if (text.startsWith('{')) {
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch {
      throw new FirnError('E_INVALID_INPUT', 'evidence file is not valid JSON');
    }
    const b = o as { teeType?: unknown; quote?: unknown };
    if (b.teeType !== 'nitro' || typeof b.quote !== 'string')
      throw new FirnError('E_INVALID_INPUT', 'evidence bundle must have teeType "nitro" and a hex quote');
    return nitroDocumentFromFile(Buffer.from(b.quote));
  }
  if (/^(0x)?([0-9a-fA-F]{2})+$/.test(text))
    return new Uint8Array(Buffer.from(text.replace(/^0x/, ''), 'hex'));
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(text.replace(/\s+/g, '')))
    return new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'base64'));
  throw new FirnError(
    'E_INVALID_INPUT',
    'evidence file is not a Nitro attestation document (raw CBOR, hex, base64 or an evidence bundle)',
  );
}

/**
 * Used without --policy: real TEEs only, debug refused unless --allow-debug, and no age limit
 * beyond the leaf certificate's own validity (about 3 hours) unless --max-age is given: the CLI
 * checks a stored document at a chosen time.
 */
export function defaultCliNitroPolicy(o: { allowDebug?: boolean; maxAge?: number }): AttestationPolicy {
  return {
    name: 'cli-nitro',
    allowSimulated: false,
    acceptedTcbStatuses: ['UpToDate'],
    allowDebug: o.allowDebug === true,
    collateralGraceSeconds: 0,
    rejectedAdvisoryIds: [],
    nitro: { maxDocumentAgeSeconds: o.maxAge ?? Number.MAX_SAFE_INTEGER },
  };
}

function render(f: VerifiedEvidence, now: number): Record<string, unknown> {
  const ts = f.extra.timestampMs as number;
  const iso = (s: number) => new Date(s * 1000).toISOString();
  return {
    teeType: f.teeType,
    debug: f.debug,
    moduleId: f.extra.moduleId,
    parentInstanceId: f.extra.parentInstanceId,
    timestamp: new Date(ts).toISOString(),
    timestampMs: ts,
    ageSeconds: now - Math.floor(ts / 1000),
    ...f.measurements,
    measurement: bytesToHex(f.measurement).slice(2),
    platformId: bytesToHex(f.platformId).slice(2),
    reportData: bytesToHex(f.reportData).slice(2),
    reportDataSource: f.extra.reportDataSource,
    userData: f.extra.userData,
    nonce: f.extra.nonce,
    publicKey: f.extra.publicKey,
    certificateNotAfter: iso(f.extra.certificateNotAfter as number),
  };
}

/** Exit code: the document did not verify (or could not be read): it is not genuine evidence. */
export const EXIT_NOT_VERIFIED = 1;
/**
 * Exit code: the document verified (genuine) and the policy refused it (e.g. a debug enclave). The
 * same code as a failure, as DCAP's command uses, so scripts that test for 0 stay safe; the JSON's
 * `verified`/`outcome` fields tell the two apart.
 */
export const EXIT_POLICY_REFUSED = 1;

/** The exit codes and outcomes of `firn attest verify`, for its --help. */
export const ATTEST_VERIFY_EXIT_HELP = `
Exit codes (every TEE type):
  0  the evidence verified and the policy accepted it
  1  the evidence did not verify (malformed; a signature, chain, time or collateral check failed):
     the JSON has an "error" with its code
  3  a file or option is wrong (a missing or unreadable file, a bad flag value): fix the command
  1  the evidence verified but the policy refused it (e.g. a debug enclave, a TCB status): the
     JSON has an "error" and the "reasons"; SGX/TDX add "status", SEV-SNP adds "facts"
With --tee nitro the JSON also says which: "outcome" is "accepted", "not-verified" or
"genuine-policy-refused" (then "verified": true and the message says the document is genuine and
only the policy refused it; a debug enclave is refused unless --allow-debug).
`;

/**
 * The core of `firn attest verify --tee nitro`: verify the document at --at, apply the policy,
 * render one JSON object. Exit code 0 only when verified and accepted; on a policy refusal the
 * output still carries the verified facts (`verified: true`) beside the reasons.
 */
export async function runAttestVerifyNitro(
  opts: AttestVerifyNitroOptions,
): Promise<{ exitCode: number; output: string }> {
  try {
    const now = parseAtArg(opts.at);
    let maxAge: number | undefined;
    if (opts.maxAge !== undefined) {
      maxAge = Number(opts.maxAge);
      if (!Number.isSafeInteger(maxAge) || maxAge <= 0)
        throw new FirnError('E_INVALID_INPUT', '--max-age must be a positive number of seconds');
    }
    const doc = nitroDocumentFromFile(await readCapped(opts.evidence, MAX_EVIDENCE_FILE, 'evidence'));
    const roots =
      opts.root === undefined
        ? undefined
        : [new Uint8Array(await readCapped(opts.root, MAX_SMALL_FILE, 'root'))];
    let policy = defaultCliNitroPolicy({
      ...(opts.allowDebug ? { allowDebug: true } : {}),
      ...(maxAge === undefined ? {} : { maxAge }),
    });
    if (opts.policy !== undefined) {
      const text = (await readCapped(opts.policy, MAX_SMALL_FILE, 'policy')).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new FirnError('E_INVALID_INPUT', 'policy file is not valid JSON');
      }
      policy = loadAttestationPolicy(json, opts.policy);
    }
    const facts = await nitroVerifier.verify(nitroVerifier.parse(doc), { now, ...(roots ? { roots } : {}) });
    const verdict = evaluateEvidence(facts, policy, { now });
    const body = { ...render(facts, now), verified: true, accepted: verdict.ok, policy: policy.name };
    if (!verdict.ok) {
      const first = verdict.reasons[0]!;
      const hint =
        facts.debug && !policy.allowDebug && opts.policy === undefined
          ? ' Pass --allow-debug to accept a debug enclave (its memory is readable by the parent instance).'
          : '';
      // Say plainly that nothing is wrong with the document itself: only the policy refused it.
      const message =
        `the attestation document is genuine (its signature, its certificate chain to the ${roots ? 'given' : 'pinned AWS Nitro'} root and its times verified at --at), ` +
        `but the policy "${policy.name}" refused it: ${verdict.reasons.map((r) => r.message).join('; ')}.${hint}`;
      return {
        exitCode: EXIT_POLICY_REFUSED,
        output: JSON.stringify({
          error: { code: first.code, message },
          outcome: 'genuine-policy-refused',
          reasons: verdict.reasons,
          ...body,
        }),
      };
    }
    return { exitCode: 0, output: JSON.stringify({ ...body, outcome: 'accepted' }) };
  } catch (e) {
    return {
      // A mistake in the command (a missing or unreadable file, a bad flag) is the README's 3.
      exitCode: typeof e === 'object' && e !== null && commandMistakes.has(e) ? 3 : EXIT_NOT_VERIFIED,
      output: JSON.stringify({ error: toErrorBody(e), verified: false, outcome: 'not-verified' }),
    };
  }
}
