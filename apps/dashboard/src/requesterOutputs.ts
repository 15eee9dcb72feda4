import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, type Hex, hexToBytes } from 'viem';
import { FirnError } from '../../../packages/core/src/errors.ts';
import type { JobView } from './network.ts';
import {
  isAddressedTo,
  openSealedArtifact,
  parseBrowserArtifactHeader,
  taggedSha256Browser,
} from './openSealedArtifact.ts';

/** One epoch of a training job's history as the enclave reports it (TrainingReport.history). */
export interface EpochPoint {
  epoch: number;
  loss: number;
  valLoss: number | null;
  valAccuracy?: number;
}

/** What the page shows a requester about one of their jobs, decrypted in the page. */
export interface RequesterJobOutputs {
  jobId: Hex;
  /** Outputs sealed to the loaded key: role, content type, plaintext size. */
  outputs: { role: string; contentType: string; size: number }[];
  /** Per-epoch history of a training job (from its 'metrics' output), else undefined. */
  history?: EpochPoint[];
  heldOutAccuracy?: number;
}

/** Largest result document the page reads from a node, bytes. */
const MAX_RESULT_BYTES = 64 * 1024 * 1024;

/** Parse a 32-byte X25519 private key typed or pasted by the requester (hex, 0x optional). */
export function parseKemPrivateKey(text: string): Uint8Array {
  const t = text.trim();
  const hex = (t.startsWith('0x') ? t : `0x${t}`) as Hex;
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex))
    throw new FirnError(
      'E_INVALID_INPUT',
      'the key must be 32 bytes of hex (your KEM private key, the one outputs are sealed to)',
    );
  return hexToBytes(hex);
}

async function readJson(res: Response, what: string): Promise<unknown> {
  const text = await res.text();
  if (text.length > MAX_RESULT_BYTES)
    throw new FirnError('E_TOO_LARGE', `${what} over ${MAX_RESULT_BYTES} bytes`);
  if (!res.ok) throw new FirnError('E_UNAVAILABLE', `${what}: the node answered ${res.status}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new FirnError('E_PARSE', `${what} is not JSON`);
  }
}

/** outputCommitment of packages/core/src/workload.ts: taggedSha256 over (role, artifact id) pairs in order. */
export function outputCommitmentOf(outputs: readonly { role: string; artifactId: Hex }[]): Hex {
  const enc = new TextEncoder();
  return bytesToHex(
    taggedSha256Browser(
      'firn/output-commitment/v1',
      ...outputs.flatMap((o) => [enc.encode(o.role), hexToBytes(o.artifactId)]),
    ),
  );
}

/**
 * Fetch a proved job's result from its node through the dashboard (`/node/{enclaveId}/...`), check
 * that the outputs are the ones the proof committed to on chain (outputCommitment) and that each
 * hashes to its id, and open those sealed to `kemPrivateKey` in the page. Returns undefined when no
 * output is addressed to this key (not this requester's job). The key is used only here, in memory.
 * Errors: E_UNAVAILABLE (node), E_PARSE, E_ARTIFACT_TAMPERED (outputs differ from the commitment or
 * their ids), and the opener's codes.
 */
export async function openRequesterOutputs(
  job: JobView,
  kemPrivateKey: Uint8Array,
  fetchFn: typeof fetch = fetch,
): Promise<RequesterJobOutputs | undefined> {
  const base = `/node/${job.enclaveId}`;
  const result = (await readJson(await fetchFn(`${base}/v1/jobs/${job.jobId}/result`), 'job result')) as {
    outputs?: { role: string; artifactId: Hex; sealed?: string }[];
  };
  const outs = Array.isArray(result.outputs) ? result.outputs.slice(0, 64) : [];
  const refs = outs.map((o) => ({
    role: String(o.role),
    artifactId: String(o.artifactId).toLowerCase() as Hex,
  }));
  if (refs.some((r) => !/^0x[0-9a-f]{64}$/.test(r.artifactId)))
    throw new FirnError('E_PARSE', 'job result names a malformed artifact id');
  if (outputCommitmentOf(refs).toLowerCase() !== job.outputCommitment.toLowerCase())
    throw new FirnError(
      'E_ARTIFACT_TAMPERED',
      'the node’s outputs are not the ones the proof committed to on chain',
    );
  const view: RequesterJobOutputs = { jobId: job.jobId, outputs: [] };
  for (const [i, o] of outs.entries()) {
    let sealed: Uint8Array;
    if (typeof o.sealed === 'string') sealed = Uint8Array.from(atob(o.sealed), (ch) => ch.charCodeAt(0));
    else {
      const r = await fetchFn(`${base}/v1/artifacts/${refs[i]!.artifactId}`);
      if (!r.ok) throw new FirnError('E_UNAVAILABLE', `output ${o.role}: the node answered ${r.status}`);
      sealed = new Uint8Array(await r.arrayBuffer());
    }
    if (bytesToHex(sha256(sealed)) !== refs[i]!.artifactId)
      throw new FirnError('E_ARTIFACT_TAMPERED', `output ${o.role} does not hash to its id`);
    if (!isAddressedTo(parseBrowserArtifactHeader(sealed), kemPrivateKey)) continue;
    const opened = await openSealedArtifact(sealed, kemPrivateKey);
    view.outputs.push({ role: refs[i]!.role, contentType: opened.contentType, size: opened.bytes.length });
    if (refs[i]!.role === 'metrics' && opened.contentType.startsWith('application/json')) {
      const report = JSON.parse(new TextDecoder().decode(opened.bytes)) as {
        history?: EpochPoint[];
        heldOut?: { accuracy?: number };
      };
      if (Array.isArray(report.history))
        view.history = report.history.slice(0, 100_000).map((e) => ({
          epoch: Number(e.epoch),
          loss: Number(e.loss),
          valLoss: e.valLoss === null ? null : Number(e.valLoss),
          ...(typeof e.valAccuracy === 'number' ? { valAccuracy: e.valAccuracy } : {}),
        }));
      if (typeof report.heldOut?.accuracy === 'number') view.heldOutAccuracy = report.heldOut.accuracy;
    }
  }
  return view.outputs.length === 0 ? undefined : view;
}
