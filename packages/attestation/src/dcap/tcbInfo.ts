import type { TcbStatus } from '../types.ts';
import { collateralError, JsonFields, parseCollateralJson } from './collateralJson.ts';

export interface TcbLevel {
  sgxComponents: number[];
  pceSvn: number;
  /** TDX TEE TCB SVN components (TDX TCB info only). */
  tdxComponents?: number[];
  tcbDate: string;
  status: TcbStatus;
  advisoryIds: string[];
}

export interface TdxModuleTcbLevel {
  isvSvn: number;
  status: TcbStatus;
  advisoryIds: string[];
}

export interface TdxModuleIdentity {
  /** "TDX_" and the module's major version as two hex digits, e.g. "TDX_03". */
  id: string;
  mrSigner: Uint8Array;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  tcbLevels: TdxModuleTcbLevel[];
}

/**
 * Intel TCB info (v2 SGX, v3 SGX and TDX), parsed from the exact signed text; not yet verified.
 * Every list of levels is in Intel's order (highest first), not the JSON's (see sortTcbLevels).
 */
export interface TcbInfo {
  id: 'SGX' | 'TDX';
  version: number;
  issueDate: number;
  nextUpdate: number;
  fmspc: Uint8Array;
  pceId: Uint8Array;
  tcbType: number;
  tcbEvaluationDataNumber: number;
  tdxModule?: { mrSigner: Uint8Array; attributes: Uint8Array; attributesMask: Uint8Array };
  tdxModuleIdentities: TdxModuleIdentity[];
  tcbLevels: TcbLevel[];
}

function compareDesc(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (b[i] ?? 0) - (a[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Platform TCB levels in Intel's order, whatever the JSON order: highest first by the SGX
 * components (lexicographically), then PCESVN, then (TDX) the TDX components, as QVL's
 * TcbLevel comparator and dcap-qvl's canonicalize_tcb_levels sort them. Stable, so equal levels
 * keep their JSON order. Matching takes the first level the platform meets.
 */
export function sortTcbLevels(levels: readonly TcbLevel[]): TcbLevel[] {
  return [...levels].sort(compareTcbLevels);
}

function compareTcbLevels(a: TcbLevel, b: TcbLevel): number {
  return (
    compareDesc(a.sgxComponents, b.sgxComponents) ||
    b.pceSvn - a.pceSvn ||
    compareDesc(a.tdxComponents ?? [], b.tdxComponents ?? [])
  );
}

/**
 * The levels in Intel's order, as sortTcbLevels gives them: the list itself when it is already
 * in that order (parseTcbInfo sorts once; matching then need not copy and sort on every call).
 */
export function tcbLevelsInOrder(levels: readonly TcbLevel[]): readonly TcbLevel[] {
  for (let i = 1; i < levels.length; i++)
    if (compareTcbLevels(levels[i - 1]!, levels[i]!) > 0) return sortTcbLevels(levels);
  return levels;
}

/** sortIsvSvnLevels, without a copy when the list is already highest first. */
export function isvSvnLevelsInOrder<T extends { isvSvn: number }>(levels: readonly T[]): readonly T[] {
  for (let i = 1; i < levels.length; i++)
    if (levels[i - 1]!.isvSvn < levels[i]!.isvSvn) return sortIsvSvnLevels(levels);
  return levels;
}

/** Levels keyed by an ISVSVN (QE identity, TDX module identity), highest first whatever the JSON order. */
export function sortIsvSvnLevels<T extends { isvSvn: number }>(levels: readonly T[]): T[] {
  return [...levels].sort((a, b) => b.isvSvn - a.isvSvn);
}

function components(v: unknown, what: () => string): number[] {
  if (!Array.isArray(v) || v.length !== 16) throw collateralError(`${what()} must list 16 components`);
  // SVNs are bytes on the platform; a level asking for more can never match, but still parses.
  const out = new Array<number>(16);
  for (let i = 0; i < 16; i++) {
    const c: unknown = v[i];
    const svn =
      typeof c === 'object' && c !== null && !Array.isArray(c)
        ? (c as Record<string, unknown>).svn
        : undefined;
    // The common case checked inline; anything else goes through JsonFields for its exact error.
    out[i] =
      typeof svn === 'number' && Number.isInteger(svn) && svn >= 0 && svn <= 0xffff
        ? svn
        : JsonFields.of(c, `${what()}[${i}]`).int('svn', 0xffff);
  }
  return out;
}

/** Parse the signed tcbInfo JSON text (the object itself, not the {tcbInfo, signature} wrapper). */
export function parseTcbInfo(text: string): TcbInfo {
  const f = JsonFields.of(parseCollateralJson(text, 'tcbInfo'), 'tcbInfo');
  const version = f.int('version', 255);
  if (version !== 2 && version !== 3) throw collateralError(`tcbInfo version ${version} is not supported`);
  // v2 has no id and is SGX only; v3 names the TEE.
  const id = version === 2 ? 'SGX' : f.str('id');
  if (id !== 'SGX' && id !== 'TDX') throw collateralError(`tcbInfo id ${id} is not SGX or TDX`);
  const tdx = id === 'TDX';
  const levels = f.arr('tcbLevels').map((lv, i): TcbLevel => {
    const l = JsonFields.of(lv, () => `tcbInfo.tcbLevels[${i}]`);
    const t = l.obj('tcb');
    let sgxComponents: number[];
    if (version === 2) {
      sgxComponents = [];
      for (let c = 1; c <= 16; c++)
        sgxComponents.push(t.int(`sgxtcbcomp${String(c).padStart(2, '0')}svn`, 0xffff));
    } else sgxComponents = components(t.o.sgxtcbcomponents, () => `${t.what}.sgxtcbcomponents`);
    const level: TcbLevel = {
      sgxComponents,
      pceSvn: t.int('pcesvn', 0xffff),
      tcbDate: l.str('tcbDate'),
      status: l.status('tcbStatus'),
      advisoryIds: l.advisories('advisoryIDs'),
    };
    if (tdx) level.tdxComponents = components(t.o.tdxtcbcomponents, () => `${t.what}.tdxtcbcomponents`);
    return level;
  });
  if (levels.length === 0) throw collateralError('tcbInfo has no TCB levels');
  const info: TcbInfo = {
    id,
    version,
    issueDate: f.date('issueDate'),
    nextUpdate: f.date('nextUpdate'),
    fmspc: f.hex('fmspc', 6),
    pceId: f.hex('pceId', 2),
    tcbType: f.int('tcbType', 255),
    tcbEvaluationDataNumber: f.int('tcbEvaluationDataNumber'),
    tdxModuleIdentities: [],
    tcbLevels: sortTcbLevels(levels),
  };
  if (info.tcbType !== 0) throw collateralError(`tcbInfo tcbType ${info.tcbType} is not supported`);
  if (tdx) {
    const m = f.obj('tdxModule');
    info.tdxModule = {
      mrSigner: m.hex('mrsigner', 48),
      attributes: m.hex('attributes', 8),
      attributesMask: m.hex('attributesMask', 8),
    };
    if (f.has('tdxModuleIdentities')) {
      info.tdxModuleIdentities = f.arr('tdxModuleIdentities', 64).map((x, i) => {
        const m2 = JsonFields.of(x, () => `tcbInfo.tdxModuleIdentities[${i}]`);
        return {
          id: m2.str('id'),
          mrSigner: m2.hex('mrsigner', 48),
          attributes: m2.hex('attributes', 8),
          attributesMask: m2.hex('attributesMask', 8),
          tcbLevels: sortIsvSvnLevels(
            m2.arr('tcbLevels').map((y, j) => {
              const l = JsonFields.of(y, () => `${m2.what}.tcbLevels[${j}]`);
              return {
                isvSvn: l.obj('tcb').int('isvsvn', 255),
                status: l.status('tcbStatus'),
                advisoryIds: l.advisories('advisoryIDs'),
              };
            }),
          ),
        };
      });
    }
  }
  return info;
}
