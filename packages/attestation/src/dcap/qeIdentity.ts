import type { TcbStatus } from '../types.ts';
import { collateralError, JsonFields, parseCollateralJson } from './collateralJson.ts';
import { sortIsvSvnLevels } from './tcbInfo.ts';

export interface QeTcbLevel {
  isvSvn: number;
  status: TcbStatus;
  advisoryIds: string[];
  /** The level's tcbDate (ISO 8601), when the identity gives one (Intel's do). */
  tcbDate?: string;
}

/** Intel enclave identity v2 (QE, TD_QE, QVE), parsed from the exact signed text; not yet verified. */
export interface QeIdentity {
  id: 'QE' | 'TD_QE' | 'QVE';
  version: number;
  issueDate: number;
  nextUpdate: number;
  tcbEvaluationDataNumber: number;
  miscSelect: number;
  miscSelectMask: number;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  tcbLevels: QeTcbLevel[];
}

/** A little-endian u32 from 4 bytes. */
function u32le(b: Uint8Array): number {
  return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
}

/** Parse the signed enclaveIdentity JSON text (the object itself, not the wrapper). */
export function parseQeIdentity(text: string): QeIdentity {
  const f = JsonFields.of(parseCollateralJson(text, 'enclaveIdentity'), 'enclaveIdentity');
  const id = f.str('id');
  if (id !== 'QE' && id !== 'TD_QE' && id !== 'QVE')
    throw collateralError(`enclaveIdentity id ${id} is not supported`);
  const version = f.int('version', 255);
  if (version !== 2) throw collateralError(`enclaveIdentity version ${version} is not supported`);
  const tcbLevels = f.arr('tcbLevels').map((x, i) => {
    const l = JsonFields.of(x, () => `enclaveIdentity.tcbLevels[${i}]`);
    return {
      isvSvn: l.obj('tcb').int('isvsvn', 0xffff),
      status: l.status('tcbStatus'),
      advisoryIds: l.advisories('advisoryIDs'),
      ...(typeof (x as { tcbDate?: unknown }).tcbDate === 'string' ? { tcbDate: l.str('tcbDate') } : {}),
    };
  });
  if (tcbLevels.length === 0) throw collateralError('enclaveIdentity has no TCB levels');
  // miscselect is written as the report's bytes in order (little-endian u32), as QVL reads it.

  return {
    id,
    version,
    issueDate: f.date('issueDate'),
    nextUpdate: f.date('nextUpdate'),
    tcbEvaluationDataNumber: f.int('tcbEvaluationDataNumber'),
    miscSelect: u32le(f.hex('miscselect', 4)),
    miscSelectMask: u32le(f.hex('miscselectMask', 4)),
    attributes: f.hex('attributes', 16),
    attributesMask: f.hex('attributesMask', 16),
    mrSigner: f.hex('mrsigner', 32),
    isvProdId: f.int('isvprodid', 0xffff),
    // Highest ISVSVN first whatever the JSON order: the QE's level is the first it meets.
    tcbLevels: sortIsvSvnLevels(tcbLevels),
  };
}
