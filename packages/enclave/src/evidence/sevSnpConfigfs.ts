import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseSevSnpReport, type SevSnpCollateral, sevSnpSelfIdentity } from '@firn/attestation';
import { FirnError } from '@firn/core';
import type { EvidenceProvider } from './types.ts';
import { MAX_TSM_TEXT_BYTES, nodeTsmFs, readTsmAttribute, type TsmFs } from './tdxConfigfs.ts';

/** GUIDs of the SEV-SNP extended-report certificate table (GHCB spec 56421, "SNP Extended Guest Request"). */
export const SEV_SNP_CERT_GUIDS = {
  vcek: '63da758d-e664-4564-adc5-f4b93be8accd',
  vlek: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
  ask: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
  ark: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
} as const;

/** A certificate table (auxblob) is a few certificates; more than this is refused unread. */
export const MAX_SEV_SNP_AUXBLOB_BYTES = 64 * 1024;
const MAX_CERT_TABLE_ENTRIES = 16;
const REPORT_BYTES = 0x4a0;

/**
 * A report obtained some other way than configfs-tsm, e.g. `/dev/sev-guest`'s SNP_GET_EXT_REPORT
 * ioctl, which Node cannot issue without native code: a small helper (e.g. `snpguest`) does it.
 */
export type SevSnpReportSource = (
  reportData: Uint8Array,
) => Promise<{ report: Uint8Array; certTable?: Uint8Array }>;

export interface SevSnpConfigfsOptions {
  /** Filesystem root; '/' in an SEV-SNP guest, a temp dir in tests. */
  root?: string;
  /** VMPL to request the report at (configfs-tsm `privlevel`, 0..3). Default: left to the kernel (0). */
  privlevel?: number;
  /** The configfs calls used; tests pass a fake kernel. */
  fs?: TsmFs;
  /** Use this instead of configfs-tsm (the `/dev/sev-guest` path through a helper). */
  source?: SevSnpReportSource;
  /** Where the sealing key comes from (a KMS after attestation): SEV-SNP's derived keys need the ioctl. */
  sealingKey?: () => Promise<Uint8Array>;
}

const pem = (der: Uint8Array) =>
  `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`.replace(
    /\n\n/g,
    '\n',
  );

function guidText(b: Uint8Array): string {
  // The table stores GUIDs in their mixed-endian binary form (EFI_GUID).
  const h = (x: Uint8Array) => Buffer.from(x).toString('hex');
  const rev = (x: Uint8Array) => Uint8Array.from(x).reverse();
  return `${h(rev(b.subarray(0, 4)))}-${h(rev(b.subarray(4, 6)))}-${h(rev(b.subarray(6, 8)))}-${h(b.subarray(8, 10))}-${h(b.subarray(10, 16))}`;
}

/**
 * Parse an SEV-SNP certificate table (GHCB spec: entries of GUID 16 bytes, offset u32, length u32,
 * ended by an all-zero entry; offsets from the table's start) into DER certificates by GUID.
 * Size- and count-capped. Errors: E_TOO_LARGE, E_EVIDENCE_MALFORMED.
 */
export function parseSevSnpCertTable(table: Uint8Array): Map<string, Uint8Array> {
  if (table.length > MAX_SEV_SNP_AUXBLOB_BYTES)
    throw new FirnError(
      'E_TOO_LARGE',
      `certificate table is ${table.length} bytes, over ${MAX_SEV_SNP_AUXBLOB_BYTES}`,
    );
  const out = new Map<string, Uint8Array>();
  const dv = new DataView(table.buffer, table.byteOffset, table.byteLength);
  for (let i = 0; ; i++) {
    const at = i * 24;
    if (i > MAX_CERT_TABLE_ENTRIES || at + 24 > table.length)
      throw new FirnError('E_EVIDENCE_MALFORMED', 'certificate table has no terminating entry');
    const guid = table.subarray(at, at + 16);
    const offset = dv.getUint32(at + 16, true);
    const length = dv.getUint32(at + 20, true);
    if (guid.every((x) => x === 0) && offset === 0 && length === 0) return out;
    if (offset < at + 24 || offset + length > table.length || length === 0)
      throw new FirnError('E_EVIDENCE_MALFORMED', 'certificate table entry points outside the table');
    out.set(guidText(guid), table.subarray(offset, offset + length));
  }
}

/** The collateral a certificate table provides: the VCEK (or VLEK) and, when present, ASK + ARK. */
export function collateralFromCertTable(table: Uint8Array): SevSnpCollateral | undefined {
  const certs = parseSevSnpCertTable(table);
  const vek = certs.get(SEV_SNP_CERT_GUIDS.vcek) ?? certs.get(SEV_SNP_CERT_GUIDS.vlek);
  if (vek === undefined) return undefined;
  const ask = certs.get(SEV_SNP_CERT_GUIDS.ask);
  const ark = certs.get(SEV_SNP_CERT_GUIDS.ark);
  return {
    vek: pem(vek),
    ...(ask === undefined ? {} : { chain: pem(ask) + (ark === undefined ? '' : pem(ark)) }),
  };
}

const TSM_REPORT = ['sys', 'kernel', 'config', 'tsm', 'report'];

/**
 * Evidence from an AMD SEV-SNP guest through the kernel's configfs-tsm ABI
 * (Documentation/ABI/testing/configfs-tsm, provider `sev_guest`): one report entry per request,
 * 64 bytes of report data into `inblob`, the ATTESTATION_REPORT from `outblob` and the host's
 * certificate table (VCEK, ASK, ARK) from `auxblob`, with `generation` checked around the read.
 * `/dev/sev-guest` needs an ioctl Node cannot issue: pass `source` (a helper) for that path.
 * The report's REPORT_DATA must equal what was written (else E_CONFLICT: another writer raced).
 */
export class SevSnpConfigfsEvidenceProvider implements EvidenceProvider {
  readonly teeType = 'sev-snp' as const;
  readonly #opts: SevSnpConfigfsOptions;
  readonly #fs: TsmFs;

  constructor(opts: SevSnpConfigfsOptions = {}) {
    if (
      opts.privlevel !== undefined &&
      !(Number.isInteger(opts.privlevel) && opts.privlevel >= 0 && opts.privlevel <= 3)
    )
      throw new FirnError('E_INVALID_INPUT', 'privlevel must be 0..3');
    this.#opts = opts;
    this.#fs = opts.fs ?? nodeTsmFs;
  }

  async quote(reportData: Uint8Array): Promise<{ quote: Uint8Array; collateral?: unknown }> {
    if (!(reportData instanceof Uint8Array) || reportData.length !== 64)
      throw new FirnError('E_INVALID_INPUT', 'report data must be 64 bytes');
    const { report, certTable } =
      this.#opts.source !== undefined
        ? await this.#opts.source(reportData)
        : await this.#configfs(reportData);
    if (report.length !== REPORT_BYTES)
      throw new FirnError('E_ENCLAVE_UNAVAILABLE', `SEV-SNP returned a report of ${report.length} bytes`);
    const parsed = parseSevSnpReport(report);
    if (!Buffer.from(parsed.reportData).equals(Buffer.from(reportData)))
      throw new FirnError('E_CONFLICT', 'the SEV-SNP report binds other report data than requested');
    const collateral =
      certTable === undefined || certTable.length === 0 ? undefined : collateralFromCertTable(certTable);
    return collateral === undefined
      ? { quote: new Uint8Array(report) }
      : { quote: new Uint8Array(report), collateral };
  }

  async #text(path: string): Promise<string> {
    return Buffer.from(await readTsmAttribute(this.#fs, path, MAX_TSM_TEXT_BYTES))
      .toString('utf8')
      .trim();
  }

  async #generation(dir: string): Promise<number> {
    const g = Number(await this.#text(join(dir, 'generation')));
    if (!Number.isSafeInteger(g) || g < 0)
      throw new FirnError('E_ENCLAVE_UNAVAILABLE', 'configfs-tsm generation unreadable');
    return g;
  }

  async #configfs(reportData: Uint8Array): Promise<{ report: Uint8Array; certTable?: Uint8Array }> {
    const dir = join(this.#opts.root ?? '/', ...TSM_REPORT, `firn-${randomBytes(8).toString('hex')}`);
    try {
      await this.#fs.mkdir(dir);
    } catch (e) {
      throw new FirnError('E_ENCLAVE_UNAVAILABLE', 'configfs-tsm report directory is not available', {
        cause: e,
      });
    }
    try {
      const provider = await this.#text(join(dir, 'provider'));
      if (provider !== 'sev_guest')
        throw new FirnError('E_ENCLAVE_UNAVAILABLE', `configfs-tsm provider is ${provider}`);
      if (this.#opts.privlevel !== undefined)
        await this.#fs.writeFile(
          join(dir, 'privlevel'),
          new Uint8Array(Buffer.from(String(this.#opts.privlevel))),
        );
      const before = await this.#generation(dir);
      await this.#fs.writeFile(join(dir, 'inblob'), reportData);
      const afterWrite = await this.#generation(dir);
      if (afterWrite !== before + 1)
        throw new FirnError('E_CONFLICT', 'configfs-tsm entry written concurrently');
      // Both blobs are read at most one byte over their caps, then refused by the checks below.
      const report = new Uint8Array(await this.#fs.readFile(join(dir, 'outblob'), REPORT_BYTES));
      let certTable: Uint8Array | undefined;
      try {
        certTable = new Uint8Array(await this.#fs.readFile(join(dir, 'auxblob'), MAX_SEV_SNP_AUXBLOB_BYTES));
      } catch {
        certTable = undefined; // no certificates from the host: the verifier fetches the VCEK itself
      }
      const afterRead = await this.#generation(dir);
      if (afterRead !== afterWrite)
        throw new FirnError('E_CONFLICT', 'configfs-tsm entry changed while reading');
      if (report.length > REPORT_BYTES)
        throw new FirnError('E_ENCLAVE_UNAVAILABLE', `configfs-tsm returned ${report.length} bytes`);
      if (certTable !== undefined && certTable.length > MAX_SEV_SNP_AUXBLOB_BYTES)
        throw new FirnError('E_TOO_LARGE', `configfs-tsm auxblob is ${certTable.length} bytes`);
      return certTable === undefined ? { report } : { report, certTable };
    } catch (e) {
      if (e instanceof FirnError) throw e;
      throw new FirnError('E_ENCLAVE_UNAVAILABLE', 'configfs-tsm report failed', { cause: e });
    } finally {
      await this.#fs.rmdir(dir).catch(() => undefined);
    }
  }

  /** Only what was configured (e.g. a KMS-released key): derived keys need the ioctl. */
  async sealingKey(): Promise<Uint8Array> {
    if (!this.#opts.sealingKey)
      throw new FirnError(
        'E_UNSUPPORTED',
        'no sealing key for this SEV-SNP guest: configure a KMS-released key',
      );
    const k = await this.#opts.sealingKey();
    if (!(k instanceof Uint8Array) || k.length !== 32)
      throw new FirnError('E_SEAL', 'configured sealing key must be 32 bytes');
    return k;
  }
}

/**
 * The enclave environment pieces for an SEV-SNP guest (what environmentFromEnv assembles per TEE):
 * the provider, and the registers (MEASUREMENT, HOST_DATA, POLICY) and chip id its own report names,
 * which the guest and every verifier reduce to the same measurement digest and Enclave ID.
 * Errors: the provider's, and E_UNSUPPORTED for a report whose chip id is masked or zero.
 */
export async function sevSnpEnvironment(o: SevSnpConfigfsOptions = {}): Promise<{
  provider: SevSnpConfigfsEvidenceProvider;
  measurementRegisters: Uint8Array[];
  platformId: Uint8Array;
}> {
  const provider = new SevSnpConfigfsEvidenceProvider(o);
  const self = sevSnpSelfIdentity((await provider.quote(new Uint8Array(64))).quote);
  return { provider, measurementRegisters: self.registers, platformId: self.platformId };
}
