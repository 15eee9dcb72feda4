import {
  type AttestationPolicy,
  createKdsClient,
  evaluateEvidence,
  loadAttestationPolicy,
  parseSevSnpReport,
  type SevSnpCollateral,
  type SevSnpProduct,
  sevSnpFacts,
} from '@firn/attestation';
import { bytesToHex, FirnError, toErrorBody } from '@firn/core';
import { readUserFile } from '../readUserFile.ts';
import { parseAtArg } from '../parseAtArg.ts';

export interface AttestVerifySevSnpOptions {
  /** ATTESTATION_REPORT file: 1184 raw bytes, or their hex. */
  report?: string;
  /** The VCEK (or VLEK) that signed it: PEM or DER. Without it, --kds fetches the VCEK. */
  vcek?: string;
  /** ASK (or ASVK) and ARK, PEM (the KDS cert_chain); default the pinned ones. */
  chain?: string;
  /** The product's KDS CRL (DER or PEM). */
  crl?: string;
  /** Fetch what is missing from the AMD KDS (or a mirror at this URL). */
  kds?: string;
  /** Cache directory for KDS answers. */
  kdsCache?: string;
  /** Product for version-2 reports when fetching from the KDS. */
  product?: string;
  /** Verification time, unix seconds. */
  at: string | number;
  /** ARK (PEM or DER) to pin instead of AMD's Milan, Genoa and Turin ARKs. */
  root?: string;
  policy?: string;
}

const MAX_FILE = 256 << 10;

/**
 * Without --policy (like the DCAP command's default): the cryptographic checks must hold and debug
 * guests are refused; VMPL, migration agent and a masked chip id are reported, not judged. A
 * deployment policy (--policy, or the production default of SevSnpPolicy) is stricter.
 */
export const DEFAULT_CLI_SEV_SNP_POLICY: AttestationPolicy = {
  name: 'cli-permissive',
  allowSimulated: false,
  acceptedTcbStatuses: ['UpToDate'],
  allowDebug: false,
  collateralGraceSeconds: 0,
  rejectedAdvisoryIds: [],
  sevSnp: { maxVmpl: 3, allowMigrationAgent: true, allowMaskedChipId: true },
};

/**
 * Errors that are a mistake in the command (a missing, unreadable or oversized file): the README's
 * exit 3, not the "did not verify" 1 that a malformed report gets.
 */
const commandMistakes = new WeakSet<object>();

/** A user-named file through the one capped reader (no FIFOs or devices; at most cap + 1 bytes read). */
const readCapped = (path: string, what: string, cap = MAX_FILE): Promise<Buffer> =>
  readUserFile(path, what, cap).catch((e: unknown) => {
    if (typeof e === 'object' && e !== null) commandMistakes.add(e);
    throw e;
  });

/** Raw bytes, or the bytes of hex text (with or without 0x). */
function bytesOrHex(buf: Buffer): Uint8Array {
  const text = buf.toString('latin1').trim();
  if (/^(0x)?([0-9a-fA-F]{2})+$/.test(text))
    return new Uint8Array(Buffer.from(text.replace(/^0x/, ''), 'hex'));
  return new Uint8Array(buf);
}

const pemOf = (der: Uint8Array) =>
  `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64')}\n-----END CERTIFICATE-----\n`;
const asPem = (b: Buffer) => (b[0] === 0x30 ? pemOf(b) : b.toString('latin1'));

function crlBase64(b: Buffer): string {
  if (b[0] === 0x30) return b.toString('base64');
  const m = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/.exec(b.toString('latin1'));
  if (m === null) throw new FirnError('E_INVALID_INPUT', '--crl must be a DER or PEM CRL');
  return m[1]!.replace(/\s+/g, '');
}

/**
 * The core of `firn attest verify --tee sev-snp`: verify an AMD SEV-SNP report with its VCEK (or
 * fetched from the KDS), apply the policy, render one JSON object. Exit code 0 when accepted.
 */
export async function runAttestVerifySevSnp(
  opts: AttestVerifySevSnpOptions,
): Promise<{ exitCode: number; output: string }> {
  try {
    const now = parseAtArg(opts.at);
    if (opts.report === undefined)
      throw new FirnError('E_INVALID_INPUT', 'give --report FILE (the ATTESTATION_REPORT)');
    const report = parseSevSnpReport(bytesOrHex(await readCapped(opts.report, 'report')));
    let collateral: SevSnpCollateral;
    let kdsClient: ReturnType<typeof createKdsClient> | undefined;
    if (opts.vcek !== undefined) {
      collateral = { vek: asPem(await readCapped(opts.vcek, 'VCEK')) };
      if (opts.chain !== undefined)
        collateral.chain = (await readCapped(opts.chain, 'chain')).toString('latin1');
      if (opts.crl !== undefined) collateral.crl = crlBase64(await readCapped(opts.crl, 'CRL', 1 << 20));
    } else if (opts.kds !== undefined) {
      const product = opts.product as SevSnpProduct | undefined;
      if (product !== undefined && !['Milan', 'Genoa', 'Turin'].includes(product))
        throw new FirnError('E_INVALID_INPUT', '--product must be Milan, Genoa or Turin');
      const kds = createKdsClient({
        baseUrl: opts.kds,
        ...(product === undefined ? {} : { product }),
        ...(opts.kdsCache === undefined ? {} : { cacheDir: opts.kdsCache }),
      });
      collateral = await kds.collateralFor(report, now);
      kdsClient = kds;
    } else throw new FirnError('E_INVALID_INPUT', 'give --vcek FILE or --kds URL');
    const roots = opts.root === undefined ? undefined : [new Uint8Array(await readCapped(opts.root, 'root'))];
    let policy = DEFAULT_CLI_SEV_SNP_POLICY;
    if (opts.policy !== undefined) {
      let json: unknown;
      try {
        json = JSON.parse((await readCapped(opts.policy, 'policy')).toString('utf8'));
      } catch (e) {
        if (e instanceof FirnError) throw e;
        throw new FirnError('E_INVALID_INPUT', 'policy file is not valid JSON');
      }
      policy = loadAttestationPolicy(json);
    }
    let facts: ReturnType<typeof sevSnpFacts>;
    try {
      facts = sevSnpFacts(report, collateral, { now, ...(roots === undefined ? {} : { roots }) });
    } catch (e) {
      await kdsClient?.forget(report); // a KDS answer that did not verify is not kept in --kds-cache
      throw e;
    }
    const verdict = evaluateEvidence(facts, policy, { now });
    const body = {
      teeType: facts.teeType,
      product: facts.extra.product,
      reportVersion: facts.extra.reportVersion,
      signingKey: facts.extra.signingKey,
      debug: facts.debug,
      measurement: facts.measurements.measurement,
      hostData: facts.measurements.hostData,
      reportData: bytesToHex(facts.reportData).slice(2),
      chipId: facts.extra.chipId,
      vmpl: facts.extra.vmpl,
      guestPolicy: facts.extra.guestPolicy,
      reportedTcb: facts.extra.reportedTcb,
      measurementDigest: bytesToHex(facts.measurement).slice(2),
      crlChecked: facts.extra.crlChecked,
      policy: policy.name,
      extra: facts.extra,
    };
    if (!verdict.ok) {
      const first = verdict.reasons[0]!;
      return {
        exitCode: 1,
        output: JSON.stringify({
          error: { code: first.code, message: verdict.reasons.map((r) => r.message).join('; ') },
          reasons: verdict.reasons,
          facts: body,
        }),
      };
    }
    return { exitCode: 0, output: JSON.stringify(body) };
  } catch (e) {
    // A mistake in the command (a missing or unreadable file, a bad flag) is the README's 3.
    return {
      exitCode: typeof e === 'object' && e !== null && commandMistakes.has(e) ? 3 : 1,
      output: JSON.stringify({ error: toErrorBody(e) }),
    };
  }
}
