// Builds the configured object store. The S3 driver is loaded only when configured, so the
// embedded default does not pay for the S3 client at start-up.
import type { Config } from '../config/index.js';
import type { ObjectStore } from './driver.js';
import { loadKeyring } from '../crypto/keyring.js';
import { EncryptedStore } from './encrypted.js';
import { checkEncryptionState } from './encryption-state.js';
import { FilesystemStore } from './filesystem.js';

export async function createStore(config: Pick<Config, 'storage' | 'encryption'>): Promise<ObjectStore> {
  const driver = await createDriver(config.storage);
  // The keyring is read once at start-up; a missing or malformed file stops start-up here.
  const keyring = config.encryption.keyring ? await loadKeyring(config.encryption.keyring) : undefined;
  // The store records whether it is encrypted: a configuration that disagrees stops here, naming
  // the problem (docs/encryption.md), for the server and every CLI command alike.
  await driver.check();
  const state = await checkEncryptionState(driver, keyring);
  if (!keyring) return driver;
  return new EncryptedStore(driver, keyring, { acceptPlaintext: state === 'encrypting' });
}

export async function createDriver(storage: Config['storage']): Promise<ObjectStore> {
  switch (storage.driver) {
    case 'filesystem':
      return new FilesystemStore(storage.filesystem);
    case 's3': {
      const { S3Store } = await import('./s3.js');
      return new S3Store(storage.s3);
    }
  }
}
