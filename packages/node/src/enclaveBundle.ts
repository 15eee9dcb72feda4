import { basename, dirname, join } from 'node:path';
import {
  type BuildEnclaveImageOptions,
  type EnclaveImage,
  buildEnclaveImage,
  defaultImageDir,
  readEnclaveImage,
} from './enclaveImage.ts';

/** The enclave program as the node runs it: the entry of a built enclave image. */
export interface EnclaveBundle {
  /** The entry file Node runs (image/app/enclave.mjs). */
  path: string;
  /** The image digest (32 bytes): the simulated TEE's raw measurement register. */
  sha256: Uint8Array;
  /** The measurement digest the registry allow-lists. */
  measurement: Uint8Array;
  image: EnclaveImage;
}

/** Entry of the default image (packages/enclave/dist/image/app/enclave.mjs). */
export function defaultBundlePath(): string {
  return join(defaultImageDir(), 'app', 'enclave.mjs');
}

/** The image directory of an entry path (…/app/enclave.mjs), or `dirname(path)/image` for another name. */
function imageDirOf(path: string): string {
  return basename(path) === 'enclave.mjs' && basename(dirname(path)) === 'app'
    ? dirname(dirname(path))
    : join(dirname(path), 'image');
}

function fromImage(image: EnclaveImage): EnclaveBundle {
  return { path: image.entry, sha256: image.digest, measurement: image.measurement, image };
}

/**
 * Build the enclave image (docs/enclave-image.md) and return its entry. `outfile` names the entry
 * (…/app/enclave.mjs) or any file whose directory receives the image under `image/`; the returned
 * `path` is the file to run. The measurement covers every file that runs inside the enclave, and
 * `opts.keyBroker` (the pinned key broker, decision 1710) when given.
 */
export async function buildEnclaveBundle(
  outfile = defaultBundlePath(),
  opts: BuildEnclaveImageOptions = {},
): Promise<EnclaveBundle> {
  return fromImage(await buildEnclaveImage(imageDirOf(outfile), opts));
}

/** Measure a built image from its entry path, verifying every file against the manifest. */
export function measureEnclaveBundle(path = defaultBundlePath()): EnclaveBundle {
  return fromImage(readEnclaveImage(imageDirOf(path), { skipNodeBinary: true }));
}
