import { FirnError } from '@firn/core';
import type { TcbStatus } from '../types.ts';
import type { PckExtensions } from './pckExtensions.ts';
import type { QeIdentity } from './qeIdentity.ts';
import type { EnclaveReport, TdReport } from './quote.ts';
import { isvSvnLevelsInOrder, type TcbInfo, type TcbLevel, tcbLevelsInOrder } from './tcbInfo.ts';

export interface TcbResult {
  status: TcbStatus;
  advisoryIds: string[];
  /** The matched level's tcbDate, where the collateral dates its levels. */
  tcbDate?: string;
}

function tcbError(message: string): FirnError {
  return new FirnError('E_EVIDENCE_TCB', message);
}

function atLeast(actual: ArrayLike<number>, required: readonly number[], from = 0): boolean {
  for (let i = from; i < required.length; i++) if ((actual[i] ?? 0) < required[i]!) return false;
  return true;
}

/**
 * The first TCB level in Intel's order (sortTcbLevels: highest first, whatever the JSON order)
 * that the platform meets: every SGX component
 * and the PCESVN from the PCK certificate, and for TDX every TEE_TCB_SVN component. When the TDX
 * module's major version (TEE_TCB_SVN[1]) is non-zero, components 0 and 1 are judged by the module
 * identity instead, as Intel's QVL does. No match means the platform is below every level Intel
 * still describes (QVL: TCB_NOT_SUPPORTED), which is a verification failure, not a status.
 */
export function matchTcbLevel(info: TcbInfo, pck: PckExtensions, td?: TdReport): TcbLevel {
  for (const level of tcbLevelsInOrder(info.tcbLevels)) {
    if (pck.pceSvn < level.pceSvn || !atLeast(pck.tcbComponents, level.sgxComponents)) continue;
    if (td !== undefined) {
      if (level.tdxComponents === undefined) continue;
      const from = (td.teeTcbSvn[1] ?? 0) > 0 ? 2 : 0;
      if (!atLeast(td.teeTcbSvn, level.tdxComponents, from)) continue;
    }
    return level;
  }
  throw tcbError('no TCB level matches the platform (TCB not supported)');
}

function maskedEqual(a: Uint8Array, b: Uint8Array, mask: Uint8Array): boolean {
  if (a.length !== mask.length || b.length !== mask.length) return false;
  for (let i = 0; i < mask.length; i++) if ((a[i]! & mask[i]!) !== (b[i]! & mask[i]!)) return false;
  return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The TDX module's own TCB status (TCB info v3 tdxModuleIdentities), or undefined when the module
 * reports major version 0 (then only its signer and attributes are checked against tdxModule).
 */
export function matchTdxModule(info: TcbInfo, td: TdReport): TcbResult | undefined {
  const version = td.teeTcbSvn[1] ?? 0;
  const isvSvn = td.teeTcbSvn[0] ?? 0;
  if (version === 0) {
    const m = info.tdxModule;
    if (m === undefined) throw tcbError('TDX TCB info has no tdxModule');
    if (
      !sameBytes(td.mrSignerSeam, m.mrSigner) ||
      !maskedEqual(td.seamAttributes, m.attributes, m.attributesMask)
    )
      throw tcbError('TDX module signer or attributes do not match the TCB info');
    return undefined;
  }
  const id = `TDX_${version.toString(16).toUpperCase().padStart(2, '0')}`;
  const ident = info.tdxModuleIdentities.find((x) => x.id.toUpperCase() === id);
  if (ident === undefined) throw tcbError(`TDX module identity ${id} is not in the TCB info`);
  if (
    !sameBytes(td.mrSignerSeam, ident.mrSigner) ||
    !maskedEqual(td.seamAttributes, ident.attributes, ident.attributesMask)
  )
    throw tcbError(`TDX module signer or attributes do not match identity ${id}`);
  const level = isvSvnLevelsInOrder(ident.tcbLevels).find((l) => l.isvSvn <= isvSvn);
  if (level === undefined)
    throw tcbError(`TDX module SVN ${isvSvn} is below every level of ${id} (TCB not supported)`);
  return { status: level.status, advisoryIds: level.advisoryIds };
}

/**
 * Check the QE report against the QE identity (MRSIGNER, ISVPRODID, masked MISCSELECT and
 * ATTRIBUTES) and return the QE's TCB status. An ISVSVN under every level is Revoked, as in QVL.
 */
export function matchQeIdentity(ident: QeIdentity, qe: EnclaveReport): TcbResult {
  if (!sameBytes(qe.mrSigner, ident.mrSigner)) throw tcbError('QE identity mismatch: MRSIGNER');
  if (qe.isvProdId !== ident.isvProdId) throw tcbError('QE identity mismatch: ISVPRODID');
  if ((qe.miscSelect & ident.miscSelectMask) >>> 0 !== (ident.miscSelect & ident.miscSelectMask) >>> 0)
    throw tcbError('QE identity mismatch: MISCSELECT');
  if (!maskedEqual(qe.attributes, ident.attributes, ident.attributesMask))
    throw tcbError('QE identity mismatch: ATTRIBUTES');
  const level = isvSvnLevelsInOrder(ident.tcbLevels).find((l) => l.isvSvn <= qe.isvSvn);
  if (level === undefined) return { status: 'Revoked', advisoryIds: [] };
  return {
    status: level.status,
    advisoryIds: level.advisoryIds,
    ...(level.tcbDate === undefined ? {} : { tcbDate: level.tcbDate }),
  };
}

/**
 * Combine the platform status with a component's (QE or TDX module) status the way Intel's QVL
 * does: an out-of-date component makes an otherwise current platform OutOfDate (keeping any
 * configuration need), a revoked one makes it Revoked; advisory ids are the union.
 */
export function convergeTcb(platform: TcbResult, component: TcbResult | undefined): TcbResult {
  if (component === undefined) return platform;
  let status = platform.status;
  if (component.status === 'Revoked') status = 'Revoked';
  else if (component.status === 'OutOfDate' || component.status === 'OutOfDateConfigurationNeeded') {
    if (status === 'UpToDate' || status === 'SWHardeningNeeded') status = 'OutOfDate';
    else if (status === 'ConfigurationNeeded' || status === 'ConfigurationAndSWHardeningNeeded')
      status = 'OutOfDateConfigurationNeeded';
  }
  const advisoryIds = [...platform.advisoryIds];
  for (const a of component.advisoryIds) if (!advisoryIds.includes(a)) advisoryIds.push(a);
  return { status, advisoryIds };
}
