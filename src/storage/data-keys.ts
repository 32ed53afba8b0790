// Data master keys (DMKs): random keys that objects' keys are derived from, stored in the store
// wrapped by a key-encryption key of the operator's keyring. Rotating the KEK re-wraps these few
// small objects; no object is rewritten, so rotation cannot race a concurrent push or delete.
import { randomBytes } from 'node:crypto';
import { newKeyId, type Keyring } from '../crypto/keyring.js';
import { EnvelopeError, unwrapKey, wrapKey } from '../crypto/envelope.js';
import { readAll } from './streams.js';
import type { KeyStatus, ObjectStore } from './driver.js';
import { isNotFound } from './errors.js';

export const DATA_KEYS_PREFIX = '_keys/data/';

interface StoredDataKey {
  id: string;
  kek: string;
  wrapped: string;
  createdAt: string;
}

export class MissingKeyError extends Error {
  override readonly name = 'MissingKeyError';
}

export class DataKeys {
  private readonly keys = new Map<string, Buffer>();
  private activeId: string | undefined;

  constructor(
    private readonly store: ObjectStore,
    private readonly keyring: Keyring,
  ) {}

  /** Loads and unwraps every DMK (creating the first one); fails naming any missing KEK. */
  async load(): Promise<void> {
    const stored = await this.readAll();
    for (const dk of stored) this.keys.set(dk.id, this.unwrap(dk));
    if (stored.length === 0) {
      const created = await this.create();
      stored.push(created);
      this.keys.set(created.id, this.unwrap(created));
    }
    this.activeId = stored.sort((a, b) => a.createdAt.localeCompare(b.createdAt)).at(-1)!.id;
  }

  active(): { id: string; key: Buffer } {
    if (!this.activeId) throw new Error('data keys not loaded: call check() first');
    return { id: this.activeId, key: this.keys.get(this.activeId)! };
  }

  /** The DMK with this id; another replica may have created it since we loaded. */
  async get(id: string): Promise<Buffer> {
    const known = this.keys.get(id);
    if (known) return known;
    const dk = await this.readOne(id);
    if (!dk) throw new EnvelopeError(`data key ${id} is not in the store`);
    const key = this.unwrap(dk);
    this.keys.set(id, key);
    return key;
  }

  /** Re-wraps every DMK not wrapped by the keyring's active KEK. Idempotent, so resumable. */
  async rewrap(progress: (done: number, total: number, id: string) => void = () => {}): Promise<number> {
    const stale = (await this.readAll()).filter((dk) => dk.kek !== this.keyring.active);
    const kek = this.keyring.keys.get(this.keyring.active)!;
    for (const [i, dk] of stale.entries()) {
      const key = this.unwrap(dk);
      await this.write({ ...dk, kek: this.keyring.active, wrapped: wrapKey(kek, key).toString('base64') });
      progress(i + 1, stale.length, dk.id);
    }
    return stale.length;
  }

  /** Which KEK wraps which DMKs: a KEK wrapping none can be retired. */
  async usage(): Promise<Map<string, string[]>> {
    const usage = new Map<string, string[]>();
    for (const dk of await this.readAll()) usage.set(dk.kek, [...(usage.get(dk.kek) ?? []), dk.id]);
    return usage;
  }

  /** The keyring's key ids, which is active and how many data keys each wraps; no key material. */
  async status(): Promise<KeyStatus> {
    const usage = await this.usage();
    const { active, keys } = this.keyring;
    return {
      activeKey: active,
      keys: [...keys.keys()].map((id) => ({ id, active: id === active, dataKeys: usage.get(id)?.length ?? 0 })),
      missingKeys: [...usage.keys()].filter((id) => !keys.has(id)),
    };
  }

  private unwrap(dk: StoredDataKey): Buffer {
    const kek = this.keyring.keys.get(dk.kek);
    if (!kek) {
      throw new MissingKeyError(`data key ${dk.id} is wrapped by key-encryption key "${dk.kek}", which the keyring does not hold`);
    }
    try {
      return unwrapKey(kek, Buffer.from(dk.wrapped, 'base64'));
    } catch {
      throw new MissingKeyError(`key "${dk.kek}" in the keyring is not the key that wrapped data key ${dk.id} (wrong key file?)`);
    }
  }

  private async create(): Promise<StoredDataKey> {
    const kek = this.keyring.keys.get(this.keyring.active)!;
    const dk: StoredDataKey = {
      id: newKeyId('d', (candidate) => this.keys.has(candidate)),
      kek: this.keyring.active,
      wrapped: wrapKey(kek, randomBytes(32)).toString('base64'),
      createdAt: new Date().toISOString(),
    };
    await this.write(dk);
    return dk;
  }

  private async write(dk: StoredDataKey): Promise<void> {
    await this.store.put(DATA_KEYS_PREFIX + dk.id, Buffer.from(JSON.stringify(dk)));
  }

  private async readOne(id: string): Promise<StoredDataKey | undefined> {
    try {
      return JSON.parse((await readAll(await this.store.get(DATA_KEYS_PREFIX + id))).toString()) as StoredDataKey;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async readAll(): Promise<StoredDataKey[]> {
    const out: StoredDataKey[] = [];
    for await (const obj of this.store.list(DATA_KEYS_PREFIX)) {
      const dk = await this.readOne(obj.key.slice(DATA_KEYS_PREFIX.length));
      if (dk) out.push(dk);
    }
    return out;
  }
}
