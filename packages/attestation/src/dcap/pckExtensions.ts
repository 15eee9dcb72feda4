import { FirnError } from '@firn/core';
import { type DerNode, derChildren, derContent, derExpect, derOid, derRoot, derSmallInt } from './der.ts';
import type { Certificate } from './x509.ts';

/** Intel's SGX extension OID on PCK certificates (SGX PCK Certificate and CRL Profile). */
export const OID_SGX_EXTENSIONS = '1.2.840.113741.1.13.1';
const P = OID_SGX_EXTENSIONS;
const P_TCB = `${P}.2.`;

/** The SGX extension of a PCK certificate: what Intel certifies about this platform. */
export interface PckExtensions {
  ppid: Uint8Array;
  /** The 16 SGX TCB component SVNs (the PCK's CPUSVN, component-wise). */
  tcbComponents: number[];
  pceSvn: number;
  cpuSvn: Uint8Array;
  pceId: Uint8Array;
  fmspc: Uint8Array;
  /** 0 = Standard, 1 = Scalable, 2 = Scalable with integrity. */
  sgxType: number;
}

function bad(what: string): FirnError {
  return new FirnError('E_EVIDENCE_MALFORMED', `PCK SGX extension: ${what}`);
}

function octets(
  b: Uint8Array,
  node: Parameters<typeof derContent>[1],
  len: number,
  what: string,
): Uint8Array {
  const c = derContent(b, derExpect(node, 0x04, what));
  if (c.length !== len) throw bad(`${what} must be ${len} bytes`);
  return c;
}

/** The value of a required SGX extension item (`${P}.${suffix}`), or a typed error naming it. */
function need(fields: Map<string, DerNode>, suffix: string, what: string): DerNode {
  const n = fields.get(`${P}.${suffix}`);
  if (n === undefined) throw bad(`${what} missing`);
  return n;
}

/** Read the SGX extension of a PCK certificate; every required field must be present exactly once. */
export function parsePckExtensions(cert: Certificate): PckExtensions {
  const ext = cert.extensions.get(OID_SGX_EXTENSIONS);
  if (ext === undefined) throw bad('missing (not a PCK certificate)');
  const b = ext.value;
  const fields = new Map<string, DerNode>();
  for (const item of derChildren(b, derRoot(b, 0x30, 'SGX extensions'), 16)) {
    const [oidN, valN] = derChildren(b, derExpect(item, 0x30, 'SGX extension item'), 2);
    const oid = derOid(b, derExpect(oidN, 0x06, 'SGX extension id'));
    if (valN === undefined) throw bad(`${oid} has no value`);
    if (fields.has(oid)) throw bad(`duplicate ${oid}`);
    fields.set(oid, valN);
  }
  const ppid = octets(b, need(fields, '1', 'PPID'), 16, 'PPID');
  const tcbNode = derExpect(need(fields, '2', 'TCB'), 0x30, 'TCB');
  const tcbComponents = new Array<number>(16).fill(-1);
  let pceSvn = -1;
  let cpuSvn: Uint8Array | undefined;
  for (const item of derChildren(b, tcbNode, 32)) {
    const [oidN, valN] = derChildren(b, derExpect(item, 0x30, 'TCB item'), 2);
    const oid = derOid(b, derExpect(oidN, 0x06, 'TCB item id'));
    if (valN === undefined) throw bad(`${oid} has no value`);
    const idx = oid.startsWith(P_TCB) ? Number(oid.slice(P_TCB.length)) : 0;
    if (idx >= 1 && idx <= 16) {
      const v = derSmallInt(b, valN, `TCB component ${idx}`);
      if (v > 255) throw bad(`TCB component ${idx} over 255`);
      tcbComponents[idx - 1] = v;
    } else if (idx === 17) {
      pceSvn = derSmallInt(b, valN, 'PCESVN');
      if (pceSvn > 0xffff) throw bad('PCESVN over 65535');
    } else if (idx === 18) cpuSvn = octets(b, valN, 16, 'CPUSVN');
  }
  if (tcbComponents.some((v) => v < 0) || pceSvn < 0 || cpuSvn === undefined) throw bad('TCB is incomplete');
  const pceId = octets(b, need(fields, '3', 'PCE-ID'), 2, 'PCE-ID');
  const fmspc = octets(b, need(fields, '4', 'FMSPC'), 6, 'FMSPC');
  const sgxType = derSmallInt(b, need(fields, '5', 'SGX type'), 'SGX type');
  return { ppid, tcbComponents, pceSvn, cpuSvn, pceId, fmspc, sgxType };
}
