// The store's encryption state, recorded in the store itself, so a process whose configuration
// disagrees with the store refuses to start instead of serving errors (or, worse, writing
// plaintext into an encrypted store). docs/encryption.md, "The store's encryption state".
//
//   _meta/encryption   {state, format, keyIds, updatedAt}, plain JSON written by the driver itself
//                      (not secret: it names key ids, never keys)
//
// States: "plaintext" (no keyring), "encrypted" (every object sealed), "encrypting" (being
// converted by `dr-registry keys encrypt-store`: registries with the keyring read both formats and
// write sealed objects; registries without it refuse the store).
import { Buffer } from 'node:buffer';
import type { Keyring } from '../crypto/keyring.js';
import { DATA_KEYS_PREFIX } from './data-keys.js';
import type { ObjectStore } from './driver.js';
import { isNotFound } from './errors.js';
import { readAll } from './streams.js';

export const ENCRYPTION_MARKER_KEY = '_meta/encryption';
export const META_PREFIX = '_meta/';
/** Objects that are not the registry's data: the marker, wrapped data keys, driver probes. */
const NOT_DATA = [META_PREFIX, '_keys/', '_probe/', 'health/probe'];
export const ENVELOPE_FORMAT = 'dr-registry envelope v1 (docs/encryption.md)';

export type EncryptionState = 'plaintext' | 'encrypting' | 'encrypted';

export interface EncryptionMarker {
  state: EncryptionState;
  /** The object format: ENVELOPE_FORMAT, or "none". */
  format: string;
  /** Key-encryption key ids of the keyring that marked the store (ids, never keys). */
  keyIds: string[];
  updatedAt: string;
}

export class EncryptionStateError extends Error {
  override readonly name = 'EncryptionStateError';
}

export async function readMarker(driver: ObjectStore): Promise<EncryptionMarker | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readAll(await driver.get(ENCRYPTION_MARKER_KEY));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  try {
    const marker = JSON.parse(bytes.toString('utf8')) as EncryptionMarker;
    if (!['plaintext', 'encrypting', 'encrypted'].includes(marker.state)) throw new Error(`unknown state ${String(marker.state)}`);
    return marker;
  } catch (err) {
    throw new EncryptionStateError(`the store's encryption marker ${ENCRYPTION_MARKER_KEY} is unreadable (${(err as Error).message}): restore it from a backup, or remove it to have it recorded afresh`);
  }
}

export async function writeMarker(driver: ObjectStore, state: EncryptionState, keyring: Keyring | undefined): Promise<EncryptionMarker> {
  const marker: EncryptionMarker = {
    state,
    format: state === 'plaintext' ? 'none' : ENVELOPE_FORMAT,
    keyIds: keyring ? [keyring.active, ...[...keyring.keys.keys()].filter((id) => id !== keyring.active)] : [],
    updatedAt: new Date().toISOString(),
  };
  await driver.put(ENCRYPTION_MARKER_KEY, Buffer.from(JSON.stringify(marker)));
  return marker;
}

/** Whether the store holds anything of the registry's (one listing, stopped at the first hit). */
export async function holdsData(driver: ObjectStore): Promise<boolean> {
  for await (const obj of driver.list('')) if (isData(obj.key)) return true;
  return false;
}

export function isData(key: string): boolean {
  return !NOT_DATA.some((p) => key.startsWith(p));
}

async function hasDataKeys(driver: ObjectStore): Promise<boolean> {
  for await (const _ of driver.list(DATA_KEYS_PREFIX)) return true;
  return false;
}

/**
 * The state the store is in, checked against the configuration (`keyring` set or not), recording
 * it on first use. Throws EncryptionStateError, naming the problem and encryption.keyring, when
 * they disagree.
 */
export async function checkEncryptionState(driver: ObjectStore, keyring: Keyring | undefined): Promise<EncryptionState> {
  let marker = await readMarker(driver);
  if (!marker) {
    // First start with the marker (a store made before it existed, or a new one): what it holds decides.
    const state: EncryptionState = (await hasDataKeys(driver)) ? 'encrypted' : (await holdsData(driver)) ? 'plaintext' : keyring ? 'encrypted' : 'plaintext';
    marker = await writeMarker(driver, state, state === 'encrypted' ? keyring : undefined);
  }
  const where = driver.description;
  if (keyring) {
    if (marker.state !== 'plaintext') return marker.state;
    if (!(await holdsData(driver))) {
      await writeMarker(driver, 'encrypted', keyring); // nothing stored yet: becomes encrypted
      return 'encrypted';
    }
    throw new EncryptionStateError(
      `the store ${where} holds unencrypted data, but encryption.keyring is set: refusing to start, since nothing stored could be read. ` +
        'Unset encryption.keyring to serve the store as it is, or encrypt it online with `dr-registry keys encrypt-store` (docs/encryption.md)',
    );
  }
  if (marker.state === 'plaintext') return 'plaintext';
  const keys = marker.keyIds.length > 0 ? `, key ${marker.keyIds.join(', ')}` : '';
  throw new EncryptionStateError(
    `the store ${where} is ${marker.state === 'encrypting' ? 'being encrypted' : 'encrypted'} (${marker.format}${keys}), but encryption.keyring is not set: ` +
      'refusing to start, since every read would fail and new objects would be written unencrypted. Set encryption.keyring to the keyring file of this store',
  );
}
