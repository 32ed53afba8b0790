// The object header and the key hierarchy (pure functions).
//
//   key-encryption key (KEK, the operator's keyring file, never in the store)
//     wraps  data master keys (DMK, random, stored wrapped under _keys/ in the store)
//       derive  one key per object: HKDF-SHA256(DMK, salt = the object's random 32-byte salt)
//
// Header of every object (61 bytes, format version 1; docs/encryption.md):
//   0  4  magic "DRRE"
//   4  1  version 1
//   5 16  DMK id, ASCII, zero-padded
//  21 32  salt (random per object)
//  53  8  nonce prefix (random per object)
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { SegmentContext } from './segments.js';

export const MAGIC = Buffer.from('DRRE');
export const VERSION = 1;
export const HEADER_SIZE = 61;
export const ID_RE = /^[A-Za-z0-9_-]{1,16}$/;

export interface Header {
  dataKeyId: string;
  salt: Buffer;
  noncePrefix: Buffer;
  bytes: Buffer;
}

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
}

export function newHeader(dataKeyId: string): Header {
  const salt = randomBytes(32);
  const noncePrefix = randomBytes(8);
  const bytes = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(bytes, 0);
  bytes[4] = VERSION;
  bytes.write(dataKeyId, 5, 16, 'ascii');
  salt.copy(bytes, 21);
  noncePrefix.copy(bytes, 53);
  return { dataKeyId, salt, noncePrefix, bytes };
}

export function parseHeader(bytes: Buffer): Header {
  if (bytes.length < HEADER_SIZE || !bytes.subarray(0, 4).equals(MAGIC)) {
    throw new EnvelopeError('not an encrypted object (no dr-registry header)');
  }
  if (bytes[4] !== VERSION) throw new EnvelopeError(`unknown encryption format version ${bytes[4]}`);
  const header = bytes.subarray(0, HEADER_SIZE);
  const dataKeyId = header.subarray(5, 21).toString('ascii').replace(/\0+$/, '');
  if (!ID_RE.test(dataKeyId)) throw new EnvelopeError('corrupt header: bad data key id');
  return { dataKeyId, salt: header.subarray(21, 53), noncePrefix: header.subarray(53, 61), bytes: Buffer.from(header) };
}

/** The per-object segment context: derived key, nonce prefix, and AAD binding header and key. */
export function segmentContext(dataMasterKey: Buffer, header: Header, objectKey: string): SegmentContext {
  const key = Buffer.from(hkdfSync('sha256', dataMasterKey, header.salt, 'dr-registry object key v1', 32));
  const name = Buffer.from(objectKey, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(name.length);
  return { key, noncePrefix: header.noncePrefix, aad: Buffer.concat([header.bytes, length, name]) };
}

// AES key wrap (RFC 3394): deterministic, authenticated, made for wrapping keys with keys.
const KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');

export function wrapKey(kek: Buffer, key: Buffer): Buffer {
  const cipher = createCipheriv('id-aes256-wrap', kek, KW_IV);
  return Buffer.concat([cipher.update(key), cipher.final()]);
}

/** Throws EnvelopeError when `kek` is not the key that wrapped `wrapped`. */
export function unwrapKey(kek: Buffer, wrapped: Buffer): Buffer {
  try {
    const decipher = createDecipheriv('id-aes256-wrap', kek, KW_IV);
    return Buffer.concat([decipher.update(wrapped), decipher.final()]);
  } catch {
    throw new EnvelopeError('key unwrap failed: wrong key-encryption key');
  }
}
