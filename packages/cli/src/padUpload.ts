import { paddedContentType, paddedLength, padPlaintext } from '@firn/client/padding';

/** A job input as `runJob` takes it: plaintext bytes and their content type. */
export interface UploadInput {
  role: string;
  bytes: Uint8Array;
  contentType: string;
}

/**
 * The inputs `firn infer` and `firn train` seal, padded inside the encryption to their Padmé
 * bucket (docs/decisions/0872, 1855): the host then sees each sealed input's bucket, never its
 * exact size, so it cannot tell which of several known models or datasets was sent, nor the digit
 * counts of the values in an input file. The enclave strips the padding before the workload sees
 * the input (decision 1852). `pad` false (`--no-pad`) seals them at their exact size. An input
 * whose padded size would pass `maxBytes` (the command's own cap on that file) is sealed unpadded
 * and named in `note`, so padding never turns an accepted file into a refused upload.
 * Costs at most 12 % more bytes (and at least 4 KiB a file).
 */
export function padUploads<T extends UploadInput>(
  inputs: readonly T[],
  pad: boolean,
  maxBytes: (role: string) => number,
  note: (line: string) => void = () => {},
): T[] {
  if (!pad) return [...inputs];
  return inputs.map((i) => {
    if (paddedLength(i.bytes.length) > maxBytes(i.role)) {
      note(
        `the ${i.role} is sealed at its exact size: padded it would pass the ${maxBytes(i.role)}-byte cap`,
      );
      return i;
    }
    return { ...i, bytes: padPlaintext(i.bytes), contentType: paddedContentType(i.contentType) };
  });
}
