import { webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

export interface OcspOptions {
  /** Responder URL, e.g. NVIDIA's https://ocsp.ndis.nvidia.com/ */
  url: string;
  /** Injected for tests and proxies; global fetch when absent. */
  fetch?: typeof fetch;
  /** Per-request time limit, ms (default 5000). */
  timeoutMs?: number;
}

export interface OcspResult {
  /** Every non-root certificate got an authenticated, current answer. */
  checked: boolean;
  /** An authenticated answer said revoked. */
  revoked: boolean;
  problems: string[];
  /**
   * When every answer was authenticated and for the right certificate but at least one was past
   * its nextUpdate: how many seconds past (the worst one). checked is false then; a policy may
   * accept such a stale answer within a grace (GpuPolicy.revocationGraceSeconds). 0 otherwise.
   */
  staleSeconds: number;
}

const MAX_OCSP_RESPONSE = 64 * 1024;
/** How long an OCSP answer without nextUpdate counts as current after its thisUpdate. */
const NO_NEXT_UPDATE_FRESH_SECONDS = 300;
let engineSet = false;

function engine(): void {
  if (engineSet) return;
  pkijs.setEngine(
    'node',
    new pkijs.CryptoEngine({
      name: 'node',
      crypto: webcrypto as unknown as ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'],
    }),
  );
  engineSet = true;
}

function toPkijs(der: Uint8Array): pkijs.Certificate {
  return pkijs.Certificate.fromBER(der);
}

function copy(der: Uint8Array): ArrayBuffer {
  return der.slice().buffer as ArrayBuffer;
}

/**
 * Ask an OCSP responder (RFC 6960) about each non-root certificate of a leaf-first chain, and
 * accept an answer only when its signature verifies for the issuer (directly or by a delegated
 * responder) and now lies in [thisUpdate, nextUpdate]. It proves revocation status only as of the
 * responder's answer; any failure to get such an answer yields checked: false, never a pass.
 */
export async function checkOcsp(
  chainDer: readonly Uint8Array[],
  opts: OcspOptions,
  now: number,
): Promise<OcspResult> {
  engine();
  const problems: string[] = [];
  let revoked = false;
  let stale = 0;
  const doFetch = opts.fetch ?? globalThis.fetch;
  try {
    const certs = chainDer.map(toPkijs);
    for (let i = 0; i + 1 < certs.length; i++) {
      const cert = certs[i]!;
      const issuer = certs[i + 1]!;
      const req = new pkijs.OCSPRequest();
      await req.createForCertificate(cert, { hashAlgorithm: 'SHA-384', issuerCertificate: issuer });
      const body = req.toSchema(true).toBER(false);
      const res = await doFetch(opts.url, {
        method: 'POST',
        headers: { 'content-type': 'application/ocsp-request' },
        body: new Uint8Array(body),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 5000),
      });
      if (!res.ok) throw new Error(`responder answered HTTP ${res.status}`);
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (bytes.length > MAX_OCSP_RESPONSE) throw new Error('OCSP response over size cap');
      const asn = asn1js.fromBER(copy(bytes));
      if (asn.offset === -1) throw new Error('OCSP response is not DER');
      const ocsp = new pkijs.OCSPResponse({ schema: asn.result });
      if (ocsp.responseStatus.valueBlock.valueDec !== 0 || !ocsp.responseBytes)
        throw new Error('OCSP response not successful');
      const basic = pkijs.BasicOCSPResponse.fromBER(ocsp.responseBytes.response.valueBlock.valueHexView);
      const ok = await basic.verify({ trustedCerts: [certs[certs.length - 1]!], issuerCerts: [issuer] });
      if (!ok) throw new Error('OCSP response signature does not verify');
      const single = basic.tbsResponseData.responses[0];
      if (!single) throw new Error('OCSP response has no answer');
      const t = Math.floor(now);
      if (single.thisUpdate.getTime() / 1000 > t + 300) throw new Error('OCSP answer is from the future');
      // An answer without nextUpdate is current only just after its thisUpdate; otherwise a
      // recorded "good" answer could be replayed forever, hiding a later revocation.
      const next = single.nextUpdate
        ? Math.floor(single.nextUpdate.getTime() / 1000)
        : Math.floor(single.thisUpdate.getTime() / 1000) + NO_NEXT_UPDATE_FRESH_SECONDS;
      if (next < t) stale = Math.max(stale, t - next);
      const status = await basic.getCertificateStatus(cert, issuer);
      if (!status.isForCertificate) throw new Error('OCSP answer is for another certificate');
      if (status.status === 1) revoked = true;
      else if (status.status !== 0) throw new Error('OCSP status unknown');
    }
    if (stale > 0) problems.push('OCSP answer is stale');
    return { checked: stale === 0, revoked, problems, staleSeconds: stale };
  } catch (e) {
    problems.push((e as Error).message);
    return { checked: false, revoked, problems, staleSeconds: 0 };
  }
}
