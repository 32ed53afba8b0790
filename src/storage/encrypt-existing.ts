// Encrypting a plaintext store in place, online (`dr-registry keys encrypt-store`,
// docs/encryption.md): every object without the envelope header is rewritten sealed, under the
// same key. Objects already sealed are skipped, so a run that was interrupted resumes where it
// stopped and a second run changes nothing.
//
// Registries keep serving meanwhile, with the keyring, in mixed mode (they read both formats and
// write only sealed objects), so what they write needs no conversion. An object is read, checked
// again for the header just before it is rewritten (a registry may have rewritten it sealed
// meanwhile), and then written: a small window remains in which a registry's newer version of a
// mutable object (a tag pointer) could be overwritten by the older one; the caller holds the
// collector's lease so no blob is swept and then resurrected.
import { MAGIC } from '../crypto/envelope.js';
import type { ObjectStore } from './driver.js';
import type { EncryptedStore } from './encrypted.js';
import { isData } from './encryption-state.js';
import { isNotFound } from './errors.js';
import { readAll } from './streams.js';

/** Objects up to this size are read whole (and re-checked) before the write; larger ones stream. */
const SMALL = 1024 * 1024;

export interface EncryptProgress {
  scanned: number;
  encrypted: number;
  alreadySealed: number;
  /** Gone or rewritten (sealed) by a registry while this run looked at them. */
  skipped: number;
  bytes: number;
}

export async function encryptExisting(driver: ObjectStore, sealed: EncryptedStore, onProgress: (p: EncryptProgress) => void = () => {}): Promise<EncryptProgress> {
  const p: EncryptProgress = { scanned: 0, encrypted: 0, alreadySealed: 0, skipped: 0, bytes: 0 };
  for await (const obj of driver.list('')) {
    if (!isData(obj.key)) continue;
    p.scanned++;
    const state = await sealedState(driver, obj.key);
    if (state === 'sealed') p.alreadySealed++;
    else if (state === 'gone') p.skipped++;
    else if (await encryptOne(driver, sealed, obj.key, obj.size)) {
      p.encrypted++;
      p.bytes += obj.size;
    } else p.skipped++;
    onProgress(p);
  }
  return p;
}

async function encryptOne(driver: ObjectStore, sealed: EncryptedStore, key: string, size: number): Promise<boolean> {
  try {
    if (size <= SMALL) {
      const bytes = await readAll(await driver.get(key));
      if ((await sealedState(driver, key)) !== 'plain') return false;
      await sealed.put(key, bytes);
      return true;
    }
    // Large objects are immutable blob data: streamed from the old version into the new one.
    await sealed.put(key, await driver.get(key), { size });
    return true;
  } catch (err) {
    if (isNotFound(err)) return false; // removed meanwhile (the upload janitor)
    throw err;
  }
}

async function sealedState(driver: ObjectStore, key: string): Promise<'sealed' | 'plain' | 'gone'> {
  try {
    const head = await readAll(await driver.get(key, { start: 0, end: MAGIC.length - 1 }));
    return head.equals(MAGIC) ? 'sealed' : 'plain';
  } catch (err) {
    if (isNotFound(err)) return 'gone';
    throw err;
  }
}
