import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { encode } from 'cborg';

/**
 * Test-only: a Nitro PKI under a locally generated P-384 root that copies AWS's root subject
 * (CN=aws.nitro-enclaves), and attestation documents signed by its leaf. It exercises what no real
 * document can: report data bound in user_data, chosen PCRs and timestamps, a forged root with
 * AWS's name. Never used outside tests; the production root is pinned in awsNitroRoot.ts.
 */
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const subtle = webcrypto.subtle;
const ALG = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' } as const;

export interface SyntheticNitroPki {
  rootDer: Uint8Array;
  intermediateDer: Uint8Array;
  leafDer: Uint8Array;
  leafKey: webcrypto.CryptoKey;
}

export interface SyntheticNitroOptions {
  notBefore?: Date;
  notAfter?: Date;
  /** Mark the leaf as a CA (an attack: the NSM's signing certificate is an end entity). */
  leafIsCa?: boolean;
}

async function key(): Promise<webcrypto.CryptoKeyPair> {
  return (await subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

export async function makeSyntheticNitroPki(o: SyntheticNitroOptions = {}): Promise<SyntheticNitroPki> {
  const notBefore = o.notBefore ?? new Date('2025-01-01T00:00:00Z');
  const notAfter = o.notAfter ?? new Date('2025-01-01T03:00:00Z');
  const [rootK, caK, leafK] = await Promise.all([key(), key(), key()]);
  const ca = (isCa: boolean) => [new x509.BasicConstraintsExtension(isCa, isCa ? 2 : undefined, true)];
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'C=US, O=Amazon, OU=AWS, CN=aws.nitro-enclaves',
    notBefore: new Date('2020-01-01T00:00:00Z'),
    notAfter: new Date('2049-01-01T00:00:00Z'),
    keys: rootK,
    signingAlgorithm: ALG,
    extensions: ca(true),
  });
  const inter = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: 'C=US, O=Amazon, OU=AWS, CN=i-0123456789abcdef0.eu-west-1.aws.nitro-enclaves',
    issuer: root.subject,
    notBefore: new Date('2020-01-01T00:00:00Z'),
    notAfter: new Date('2049-01-01T00:00:00Z'),
    publicKey: caK.publicKey,
    signingKey: rootK.privateKey,
    signingAlgorithm: ALG,
    extensions: ca(true),
  });
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: '03',
    subject: 'C=US, O=Amazon, OU=AWS, CN=i-0123456789abcdef0-enc0123456789abcdef.eu-west-1.aws',
    issuer: inter.subject,
    notBefore,
    notAfter,
    publicKey: leafK.publicKey,
    signingKey: caK.privateKey,
    signingAlgorithm: ALG,
    extensions: ca(o.leafIsCa === true),
  });
  return {
    rootDer: new Uint8Array(root.rawData),
    intermediateDer: new Uint8Array(inter.rawData),
    leafDer: new Uint8Array(leaf.rawData),
    leafKey: leafK.privateKey,
  };
}

export interface SyntheticDocOptions {
  moduleId?: string;
  timestampMs?: number;
  /** PCR index to 48-byte value; default PCR0..15 with PCR0..2 non-zero. */
  pcrs?: Map<number, Uint8Array>;
  userData?: Uint8Array | null;
  nonce?: Uint8Array | null;
  publicKey?: Uint8Array | null;
  /** COSE alg in the protected header (default -35, ES384). */
  alg?: number;
  /** Extra payload fields (an attack: unknown fields). */
  extraFields?: Record<string, unknown>;
  /** Sign these payload bytes instead of the encoded ones (tests only). */
  payloadOverride?: Uint8Array;
}

/** Default PCRs of a production (non-debug) synthetic enclave: PCR i = 48 bytes of (i + 1). */
export function syntheticPcrs(debug = false): Map<number, Uint8Array> {
  const m = new Map<number, Uint8Array>();
  for (let i = 0; i < 16; i++)
    m.set(
      i,
      i <= 2 && debug
        ? new Uint8Array(48)
        : i <= 4 || i === 8
          ? new Uint8Array(48).fill(i + 1)
          : new Uint8Array(48),
    );
  return m;
}

/** A COSE_Sign1 attestation document in AWS's shape, signed with the PKI's leaf key (ES384). */
export async function makeSyntheticNitroDocument(
  pki: SyntheticNitroPki,
  o: SyntheticDocOptions = {},
): Promise<Uint8Array> {
  const payload =
    o.payloadOverride ??
    encode(
      new Map<string, unknown>([
        ['module_id', o.moduleId ?? 'i-0123456789abcdef0-enc0123456789abcdef'],
        ['digest', 'SHA384'],
        ['timestamp', o.timestampMs ?? Date.parse('2025-01-01T00:00:10Z')],
        ['pcrs', o.pcrs ?? syntheticPcrs()],
        ['certificate', pki.leafDer],
        ['cabundle', [pki.rootDer, pki.intermediateDer]],
        ['public_key', o.publicKey === undefined ? null : o.publicKey],
        ['user_data', o.userData === undefined ? null : o.userData],
        ['nonce', o.nonce === undefined ? null : o.nonce],
        ...Object.entries(o.extraFields ?? {}),
      ]),
    );
  const protectedHeader = encode(new Map([[1, o.alg ?? -35]]));
  const toBeSigned = encode(['Signature1', protectedHeader, new Uint8Array(0), payload]);
  const sig = new Uint8Array(await subtle.sign({ name: 'ECDSA', hash: 'SHA-384' }, pki.leafKey, toBeSigned));
  return encode([protectedHeader, new Map(), payload, sig]);
}
