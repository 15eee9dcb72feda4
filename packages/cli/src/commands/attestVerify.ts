import { exitCodeOf } from '../output.ts';
import { bytesToHex, FirnError, toErrorBody } from '@firn/core';
import type { Command } from 'commander';
import {
  type DcapPolicy,
  evaluateDcapEvidence,
  INTEL_TCB_STATUSES,
  loadAttestationPolicy,
  loadQuoteCollateralV3,
  verifyDcapQuote,
} from '@firn/attestation';
import { collateralSourceFromArgs } from '../collateralArgs.ts';
import {
  ATTEST_VERIFY_EXIT_HELP,
  type AttestVerifyNitroOptions,
  runAttestVerifyNitro,
} from './attestVerifyNitro.ts';
import { type AttestVerifySevSnpOptions, runAttestVerifySevSnp } from './attestVerifySevSnp.ts';
import { readUserFile } from '../readUserFile.ts';
import { parseAtArg } from '../parseAtArg.ts';

export interface AttestVerifyOptions {
  /** Quote file: raw bytes, or hex with or without 0x. */
  quote?: string;
  /** Collateral file in dcap-qvl's QuoteCollateralV3 JSON shape (with --pccs: used while current). */
  collateral?: string;
  /** PCS/PCCS base URL: fetch what the collateral file lacks or what has expired. */
  pccs?: string;
  /** Keep fetched collateral on disk until its nextUpdate. */
  collateralCache?: string;
  /** Verification time, unix seconds. */
  at: string | number;
  /** Trust anchor (PEM or DER) instead of the pinned Intel SGX Root CA. */
  root?: string;
  /** Policy: firn's policy JSON, or one of Intel's appraisal-policy files. */
  policy?: string;
}

const MAX_QUOTE_FILE = 256 << 10;
const MAX_COLLATERAL_FILE = 16 << 20;
const MAX_SMALL_FILE = 256 << 10;

/**
 * Used without --policy: every TCB status but Revoked is accepted so that the status is visible,
 * but debug enclaves and collateral past its nextUpdate are still refused.
 */
export const DEFAULT_CLI_DCAP_POLICY: DcapPolicy = {
  policy: {
    name: 'cli-permissive',
    allowSimulated: false,
    acceptedTcbStatuses: INTEL_TCB_STATUSES.filter((s) => s !== 'Revoked'),
    allowDebug: false,
    collateralGraceSeconds: 0,
    rejectedAdvisoryIds: [],
  },
  dcap: {},
};

/** A user-named file through the one capped reader (no FIFOs or devices; at most cap + 1 bytes read). */
const readCapped = (path: string, cap: number, what: string): Promise<Buffer> =>
  readUserFile(path, what, cap);

/** Quote bytes from a file holding either the raw quote or its hex text. */
export function quoteBytesFromFile(buf: Buffer): Uint8Array {
  const text = buf.toString('latin1').trim();
  if (/^(0x)?([0-9a-fA-F]{2})+$/.test(text))
    return new Uint8Array(Buffer.from(text.replace(/^0x/, ''), 'hex'));
  return new Uint8Array(buf);
}

/** The policy file through the one loader the daemon and the SDK use too (firn's JSON or Intel's). */
function loadPolicy(json: unknown): DcapPolicy {
  return { policy: loadAttestationPolicy(json), dcap: {} };
}

/** The core of `firn attest verify`: verify, apply the policy, render one JSON object. */
export async function runAttestVerify(
  opts: AttestVerifyOptions,
): Promise<{ exitCode: number; output: string }> {
  try {
    const now = parseAtArg(opts.at);
    if (opts.quote === undefined) throw new FirnError('E_INVALID_INPUT', 'give --quote FILE');
    const quote = quoteBytesFromFile(await readCapped(opts.quote, MAX_QUOTE_FILE, 'quote'));
    let collateral: unknown =
      opts.collateral === undefined
        ? undefined
        : loadQuoteCollateralV3(
            (await readCapped(opts.collateral, MAX_COLLATERAL_FILE, 'collateral')).toString('utf8'),
          );
    const source = collateralSourceFromArgs({
      ...(opts.pccs === undefined ? {} : { pccs: opts.pccs }),
      ...(opts.collateralCache === undefined ? {} : { collateralCache: opts.collateralCache }),
    });
    if (source === undefined && collateral === undefined)
      throw new FirnError('E_INVALID_INPUT', 'give --collateral FILE or --pccs URL');
    const roots =
      opts.root === undefined
        ? undefined
        : [new Uint8Array(await readCapped(opts.root, MAX_SMALL_FILE, 'root'))];
    let policy = DEFAULT_CLI_DCAP_POLICY;
    if (opts.policy !== undefined) {
      const text = (await readCapped(opts.policy, MAX_SMALL_FILE, 'policy')).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new FirnError('E_INVALID_INPUT', 'policy file is not valid JSON');
      }
      policy = loadPolicy(json);
    }
    if (source !== undefined)
      collateral = await source.collateralFor(quote, now, {
        ...(collateral === undefined ? {} : { attached: collateral }),
        graceSeconds: policy.policy.collateralGraceSeconds,
      });
    const facts = await verifyDcapQuote(quote, { collateral, now, ...(roots ? { roots } : {}) });
    const verdict = evaluateDcapEvidence(facts, policy, { now });
    if (!verdict.ok) {
      const first = verdict.reasons[0]!;
      const error = { code: first.code, message: verdict.reasons.map((r) => r.message).join('; ') };
      return {
        exitCode: 1,
        output: JSON.stringify({
          error,
          status: facts.tcbStatus,
          advisoryIds: facts.advisoryIds,
          reasons: verdict.reasons,
        }),
      };
    }
    const iso = (t: number | undefined) => (t === undefined ? null : new Date(t * 1000).toISOString());
    const body = {
      teeType: facts.teeType,
      quoteVersion: facts.extra.quoteVersion,
      status: facts.tcbStatus,
      advisoryIds: facts.advisoryIds,
      debug: facts.debug,
      fmspc: facts.extra.fmspc,
      pceId: facts.extra.pceId,
      reportData: bytesToHex(facts.reportData).slice(2),
      ...facts.measurements,
      measurement: bytesToHex(facts.measurement).slice(2),
      platformId: bytesToHex(facts.platformId).slice(2),
      tcbEvaluationDataNumber: facts.tcbEvaluationDataNumber ?? null,
      tcbDate: facts.extra.tcbDate,
      platformTcbStatus: facts.extra.platformTcbStatus,
      qeTcbStatus: facts.extra.qeTcbStatus,
      collateral: { issuedAt: iso(facts.collateralIssuedAt), nextUpdate: iso(facts.collateralNextUpdate) },
      policy: policy.policy.name,
      extra: facts.extra,
    };
    return { exitCode: 0, output: JSON.stringify(body) };
  } catch (e) {
    // A mistake in the command (a missing file, a malformed flag) is exit 3, as for every command.
    return { exitCode: exitCodeOf(e) === 3 ? 3 : 1, output: JSON.stringify({ error: toErrorBody(e) }) };
  }
}

/**
 * `firn attest verify`: verify an SGX or TDX quote offline with its collateral, or with
 * `--tee nitro --evidence FILE` an AWS Nitro Enclaves attestation document (attestVerifyNitro.ts).
 */
export function registerAttestVerify(attest: Command): Command {
  return attest
    .command('verify')
    .description(
      'verify an Intel SGX or TDX (DCAP) quote, an AWS Nitro attestation document, or an AMD SEV-SNP report, at a given time',
    )
    .option('--tee <type>', 'sgx or tdx (default: read from the quote), nitro, or sev-snp')
    .option('--quote <file>', 'quote file: raw bytes or hex (with or without 0x); required for SGX and TDX')
    .option(
      '--evidence <file>',
      'with --tee nitro: the attestation document (raw CBOR, hex, base64 or a bundle)',
    )
    .option('--report <file>', 'with --tee sev-snp: the ATTESTATION_REPORT (raw or hex)')
    .option('--vcek <file>', 'with --tee sev-snp: the VCEK or VLEK (PEM or DER)')
    .option('--chain <file>', 'with --tee sev-snp: ASK and ARK, PEM (default: the pinned ones)')
    .option('--crl <file>', "with --tee sev-snp: the product's KDS CRL")
    .option(
      '--kds <url>',
      'with --tee sev-snp: fetch the VCEK, chain and CRL from the AMD KDS (https://kdsintf.amd.com) or a mirror',
    )
    .option('--kds-cache <dir>', 'with --tee sev-snp: keep KDS answers on disk')
    .option(
      '--product <name>',
      'with --tee sev-snp: Milan, Genoa or Turin, for version-2 reports fetched from the KDS',
    )
    .option('--collateral <file>', "collateral in dcap-qvl's QuoteCollateralV3 JSON shape")
    .option(
      '--pccs <url>',
      'Intel PCS or PCCS base URL: fetch the collateral the file lacks or that has expired',
    )
    .option('--collateral-cache <dir>', 'keep fetched collateral on disk until its nextUpdate')
    .requiredOption('--at <unixSeconds>', 'verification time, unix seconds')
    .option('--root <file>', 'trust anchor (PEM or DER) instead of the pinned Intel SGX (or AWS Nitro) root')
    .option('--policy <file>', "policy JSON (firn's, or an Intel appraisal policy)")
    .option('--allow-debug', 'with --tee nitro and no --policy: accept a debug enclave (still reported)')
    .option('--max-age <seconds>', 'with --tee nitro and no --policy: largest accepted document age')
    .option('--json', 'print JSON (the only output format)', true)
    .addHelpText('after', ATTEST_VERIFY_EXIT_HELP)
    .action(
      async (
        o: AttestVerifyOptions &
          Partial<AttestVerifyNitroOptions> &
          AttestVerifySevSnpOptions & { tee?: string; quote?: string; json?: boolean },
      ) => {
        // A missing or contradictory flag is a mistake in the command: the README's exit 3.
        const fail = (code: string, message: string) => ({
          exitCode: 3,
          output: JSON.stringify({ error: { code, message } }),
        });
        const evidence = o.evidence ?? o.quote;
        const r =
          o.tee === 'sev-snp'
            ? await runAttestVerifySevSnp(o)
            : o.tee === 'nitro'
              ? evidence === undefined
                ? fail('E_INVALID_INPUT', '--tee nitro needs --evidence FILE')
                : await runAttestVerifyNitro({ ...o, evidence })
              : o.tee !== undefined && o.tee !== 'sgx' && o.tee !== 'tdx'
                ? fail('E_UNSUPPORTED', `--tee ${o.tee} is not sgx, tdx, nitro or sev-snp`)
                : o.quote === undefined
                  ? fail('E_INVALID_INPUT', 'give --quote FILE (or --tee nitro --evidence FILE)')
                  : await runAttestVerify({ ...o, quote: o.quote });
        process.stdout.write(`${r.output}\n`);
        process.exitCode = r.exitCode;
      },
    );
}
