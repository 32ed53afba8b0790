// Digests as the OCI spec defines them; only the algorithms registries must support are accepted.
import { createHash, type Hash } from 'node:crypto';

export type DigestAlgorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const DIGEST_RE = /^(sha256|sha512):([0-9a-f]+)$/;

export class InvalidDigestError extends Error {
  override readonly name = 'InvalidDigestError';
}

export function parseDigest(digest: string): { algorithm: DigestAlgorithm; hex: string } {
  const m = DIGEST_RE.exec(digest);
  if (!m) throw new InvalidDigestError(`invalid digest: ${JSON.stringify(digest.slice(0, 200))}`);
  const algorithm = m[1] as DigestAlgorithm;
  const hex = m[2]!;
  if (hex.length !== HEX_LENGTH[algorithm]) {
    throw new InvalidDigestError(`invalid ${algorithm} digest length: ${hex.length}`);
  }
  return { algorithm, hex };
}

export function isDigest(value: string): boolean {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function newHash(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
