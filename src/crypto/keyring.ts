// The operator's keyring: key-encryption keys (KEKs) by id, one of them active. A YAML (or JSON)
// file that never goes into the store:
//   active: k2
//   keys:
//     k1: <base64 of 32 random bytes>
//     k2: <base64 of 32 random bytes>
import { randomBytes } from 'node:crypto';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import YAML from 'yaml';
import { ID_RE } from './envelope.js';

export interface Keyring {
  active: string;
  keys: Map<string, Buffer>;
}

export class KeyringError extends Error {
  override readonly name = 'KeyringError';
}

export async function loadKeyring(file: string): Promise<Keyring> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new KeyringError(`cannot read keyring ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new KeyringError(`keyring ${file} is not valid YAML: ${(err as Error).message}`);
  }
  const { active, keys } = (doc ?? {}) as { active?: unknown; keys?: unknown };
  if (!keys || typeof keys !== 'object') throw new KeyringError(`keyring ${file}: "keys" must map key ids to base64 keys`);
  const map = new Map<string, Buffer>();
  for (const [id, value] of Object.entries(keys)) {
    if (!ID_RE.test(id)) throw new KeyringError(`keyring ${file}: key id ${JSON.stringify(id)} must be 1-16 of A-Z a-z 0-9 _ -`);
    const bytes = typeof value === 'string' ? Buffer.from(value, 'base64') : Buffer.alloc(0);
    if (bytes.length !== 32) throw new KeyringError(`keyring ${file}: key ${id} must be 32 bytes in base64`);
    map.set(id, bytes);
  }
  if (typeof active !== 'string' || !map.has(active)) {
    throw new KeyringError(`keyring ${file}: "active" must name one of its keys (${[...map.keys()].join(', ') || 'none'})`);
  }
  return { active, keys: map };
}

/** Writes the keyring readable by its owner only, atomically. */
export async function saveKeyring(file: string, keyring: Keyring): Promise<void> {
  const doc = { active: keyring.active, keys: Object.fromEntries([...keyring.keys].map(([id, k]) => [id, k.toString('base64')])) };
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `# dr-registry keyring: back it up; without it the store cannot be read\n${YAML.stringify(doc)}`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

/**
 * A new key id, e.g. "k261123-9f2c41ab": its day, and 32 random bits. Callers also check that
 * the id is unused, since overwriting a key would make everything it wrapped unreadable.
 */
export function newKeyId(prefix: string, taken: (id: string) => boolean = () => false): string {
  const stamp = new Date().toISOString().slice(2, 10).replaceAll('-', '');
  for (;;) {
    const id = `${prefix}${stamp}-${randomBytes(4).toString('hex')}`;
    if (!taken(id)) return id;
  }
}

export function newKey(): Buffer {
  return randomBytes(32);
}
