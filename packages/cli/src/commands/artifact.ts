import { readFileSync, writeFileSync } from 'node:fs';
import { openOutput, paddedContentType, padPlaintext, parsePaddedContentType } from '@firn/client';
import { bytesToHex, hexBytes, InvalidInputError } from '@firn/core';
import { artifactId, generateKemKeyPair, sealArtifact } from '@firn/crypto';
import type { Command } from 'commander';
import { printError, printJson } from '../output.ts';

/**
 * Seal a file to one or more X25519 recipients; returns the artifact id and size. With `pad`, the
 * plaintext is padded inside the encryption to a Padmé size bucket (packages/client/src/padding.ts),
 * so the sealed size reveals only the bucket; `artifact open` removes the padding.
 */
export async function artifactSeal(o: {
  in: string;
  out: string;
  recipients: string[];
  contentType: string;
  pad?: boolean;
}) {
  if (o.recipients.length === 0)
    throw new InvalidInputError('pass at least one --recipient KEM public key (hex)');
  // Only --pad may set the padding parameter: open strips padding wherever it says so.
  if (parsePaddedContentType(o.contentType).padded)
    throw new InvalidInputError(
      '--content-type carries firn-pad=padme: drop it (pass --pad to pad); artifact open would cut the file',
    );
  const plain = new Uint8Array(readFileSync(o.in));
  const sealed = await sealArtifact(o.pad ? padPlaintext(plain) : plain, {
    recipients: o.recipients.map((r) => hexBytes(r, 'recipient', 32)),
    contentType: o.pad ? paddedContentType(o.contentType) : o.contentType,
  });
  writeFileSync(o.out, sealed);
  return { id: artifactId(sealed), size: sealed.length, padded: o.pad === true };
}

function readKemKey(file: string): Uint8Array {
  const o = JSON.parse(readFileSync(file, 'utf8')) as { privateKey?: unknown };
  return hexBytes(o.privateKey, 'privateKey', 32);
}

/** Open a sealed artifact with a KEM private key (JSON key file from `firn artifact keygen`). */
export async function artifactOpen(o: { in: string; out: string; keyFile: string }) {
  const sealed = new Uint8Array(readFileSync(o.in));
  const r = await openOutput(sealed, readKemKey(o.keyFile));
  writeFileSync(o.out, r.bytes);
  return { id: artifactId(sealed), contentType: r.contentType, size: r.bytes.length };
}

/** Write a fresh X25519 KEM key pair as JSON (mode 0600). */
export async function artifactKeygen(o: { out: string }) {
  const k = await generateKemKeyPair();
  writeFileSync(
    o.out,
    JSON.stringify({ privateKey: bytesToHex(k.privateKey), publicKey: bytesToHex(k.publicKey) }),
    // Never over an existing key: everything sealed to it would be lost.
    { mode: 0o600, flag: 'wx' },
  );
  return { publicKey: bytesToHex(k.publicKey) };
}

export function registerArtifact(program: Command): void {
  const a = program.command('artifact').description('sealed artifacts');
  const run = (f: () => Promise<unknown>, json = true) =>
    f().then(printJson, (e: unknown) => {
      printError(e, json);
      process.exitCode = 1;
    });
  a.command('keygen')
    .description('create an X25519 KEM key pair file')
    .requiredOption('--out <file>', 'key file to write')
    .action((o: { out: string }) => run(() => artifactKeygen(o)));
  a.command('seal <in>')
    .description('seal a file to KEM public keys')
    .requiredOption('--out <file>', 'sealed output')
    .requiredOption('--recipient <hex...>', 'recipient KEM public key(s), hex')
    .option('--content-type <type>', 'content type', 'application/octet-stream')
    .option('--pad', 'pad the plaintext (inside the encryption) to a Padmé size bucket, at least 4 KiB')
    .action((inp: string, o: { out: string; recipient: string[]; contentType: string; pad?: boolean }) =>
      run(() =>
        artifactSeal({
          in: inp,
          out: o.out,
          recipients: o.recipient,
          contentType: o.contentType,
          pad: o.pad === true,
        }),
      ),
    );
  a.command('open <in>')
    .description('open a sealed artifact with a KEM key file')
    .requiredOption('--out <file>', 'plaintext output')
    .requiredOption('--key-file <file>', 'KEM key file (from keygen)')
    .action((inp: string, o: { out: string; keyFile: string }) =>
      run(() => artifactOpen({ in: inp, out: o.out, keyFile: o.keyFile })),
    );
}
