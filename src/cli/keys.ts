// `dr-registry keys ...`: the operator's key management.
//   generate --keyring FILE   a new keyring with one active key (refuses to overwrite)
//   status                    which key-encryption key wraps which data keys
//   rotate                    add a new active key to the keyring, re-wrap every data key with it
//   retire ID                 remove a key from the keyring once no data key depends on it
//   encrypt-store             encrypt a plaintext store in place, online (see encrypt-store.ts)
import { access } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { auditOnce } from '../audit/log.js';
import { loadConfig } from '../config/index.js';
import { loadKeyring, newKey, newKeyId, saveKeyring, type Keyring } from '../crypto/keyring.js';
import { createStore } from '../storage/index.js';
import { EncryptedStore } from '../storage/encrypted.js';
import { encryptStore } from './encrypt-store.js';
import type { Command } from './command.js';

const out = (line: string) => process.stdout.write(`${line}\n`);

export async function keysCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, keyring: { type: 'string' } },
  });
  if (sub === 'generate') return generate(values.keyring);
  const config = loadConfig({ file: values.config });
  if (sub === 'encrypt-store') return encryptStore(config);
  if (!config.encryption.keyring) throw new Error('encryption.keyring is not set: there are no keys to manage');
  const file = config.encryption.keyring;
  const store = await createStore(config);
  if (!(store instanceof EncryptedStore)) throw new Error('the configured store is not encrypted');
  await store.check();
  try {
    switch (sub) {
      case 'status':
        return await status(store, await loadKeyring(file));
      case 'rotate':
        return await rotate(store, file, config.audit.retention);
      case 'retire':
        return await retire(store, file, positionals[0], config.audit.retention);
      default:
        process.stderr.write('usage: dr-registry keys generate --keyring FILE | status | rotate | retire ID | encrypt-store\n');
        return 2;
    }
  } finally {
    await store.close();
  }
}

async function generate(file: string | undefined): Promise<number> {
  if (!file) throw new Error('keys generate needs --keyring FILE');
  if (await access(file).then(() => true, () => false)) throw new Error(`${file} exists: refusing to overwrite a keyring`);
  const id = newKeyId('k');
  await saveKeyring(file, { active: id, keys: new Map([[id, newKey()]]) });
  out(`keyring ${file} written with active key ${id}; back it up now: without it the store cannot be read`);
  return 0;
}

async function status(store: EncryptedStore, keyring: Keyring): Promise<number> {
  const usage = await store.dataKeys.usage();
  for (const id of keyring.keys.keys()) {
    const wraps = usage.get(id) ?? [];
    out(`${id}${id === keyring.active ? ' (active)' : ''}: wraps ${wraps.length} data key(s)${wraps.length ? `: ${wraps.join(', ')}` : ', can be retired'}`);
  }
  return 0;
}

/**
 * Online and resumable: the new key is saved as active first, then data keys are re-wrapped one
 * by one (each an atomic small write). Running it again finishes an interrupted rotation.
 */
async function rotate(store: EncryptedStore, file: string, auditRetention: number): Promise<number> {
  const keyring = await loadKeyring(file);
  const stale = [...(await store.dataKeys.usage())].filter(([kek]) => kek !== keyring.active).length;
  if (stale === 0) {
    const id = newKeyId('k', (candidate) => keyring.keys.has(candidate));
    keyring.keys.set(id, newKey());
    keyring.active = id;
    await saveKeyring(file, keyring);
    out(`new active key ${id} added to ${file}`);
  } else {
    out(`resuming rotation to active key ${keyring.active}`);
  }
  const { EncryptedStore } = await import('../storage/encrypted.js');
  const rotated = new EncryptedStore(store.inner, keyring);
  await rotated.check();
  const count = await rotated.dataKeys.rewrap((done, total, id) => out(`re-wrapped data key ${id} (${done}/${total})`));
  out(`rotation done: ${count} data key(s) re-wrapped with ${keyring.active}; no object was rewritten`);
  await auditOnce(rotated, { action: 'key.rotate', actor: { kind: 'cli', user: userInfo().username }, detail: { active: keyring.active, rewrapped: count } }, auditRetention);
  out('distribute the new keyring to every replica; old keys can then be retired with `keys retire`');
  return 0;
}

async function retire(store: EncryptedStore, file: string, id: string | undefined, auditRetention: number): Promise<number> {
  const keyring = await loadKeyring(file);
  if (!id || !keyring.keys.has(id)) throw new Error(`no key ${id ?? '(none given)'} in ${file}`);
  if (id === keyring.active) throw new Error(`${id} is the active key: rotate first`);
  const dependents = (await store.dataKeys.usage()).get(id) ?? [];
  if (dependents.length > 0) {
    process.stderr.write(`key ${id} still wraps data key(s) ${dependents.join(', ')}: run \`keys rotate\` first\n`);
    return 1;
  }
  keyring.keys.delete(id);
  await saveKeyring(file, keyring);
  await auditOnce(store, { action: 'key.retire', actor: { kind: 'cli', user: userInfo().username }, detail: { key: id } }, auditRetention);
  out(`key ${id} removed from ${file}`);
  return 0;
}

const KEYS_OPTIONS = `options:
  -c, --config FILE   YAML configuration file (encryption.keyring names the keyring)
`;

export const keysCommandSpec: Command = {
  name: 'keys',
  summary: 'manage encryption keys; encrypt a plaintext store online (docs/encryption.md)',
  usage: `usage: dr-registry keys generate --keyring FILE | status | rotate | retire ID | encrypt-store

subcommands:
  generate --keyring FILE   write a new keyring with one active key (never overwrites)
  status                    which key-encryption key wraps which data keys
  rotate                    add a new active key and re-wrap every data key with it (resumable)
  retire ID                 remove a key no data key depends on any more
  encrypt-store             encrypt a plaintext store in place, online and resumable

${KEYS_OPTIONS}`,
  subcommands: {
    generate: 'usage: dr-registry keys generate --keyring FILE\n\nWrites a new keyring with one active key; refuses to overwrite an existing file.\n',
    status: `usage: dr-registry keys status [--config FILE]\n\nLists the keys of the keyring and the data keys each wraps.\n\n${KEYS_OPTIONS}`,
    rotate: `usage: dr-registry keys rotate [--config FILE]\n\nAdds a new active key to the keyring and re-wraps every data key with it; no object is\nrewritten. Running it again finishes an interrupted rotation.\n\n${KEYS_OPTIONS}`,
    retire: `usage: dr-registry keys retire ID [--config FILE]\n\nRemoves key ID from the keyring once no data key depends on it.\n\n${KEYS_OPTIONS}`,
    'encrypt-store': `usage: dr-registry keys encrypt-store [--config FILE]\n\nEncrypts every object of a plaintext store under the keyring, online while registries serve\nit; running it again resumes an interrupted run (docs/encryption.md).\n\n${KEYS_OPTIONS}`,
  },
  run: (args) => keysCommand(args),
};
