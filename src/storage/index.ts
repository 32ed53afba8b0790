// Builds the configured object store. The S3 driver is loaded only when configured, so the
// embedded default does not pay for the S3 client at start-up.
import type { Config } from '../config/index.js';
import type { ObjectStore } from './driver.js';
import { loadKeyring } from '../crypto/keyring.js';
import { EncryptedStore } from './encrypted.js';
import { FilesystemStore } from './filesystem.js';

export async function createStore(config: Pick<Config, 'storage' | 'encryption'>): Promise<ObjectStore> {
  const driver = await createDriver(config.storage);
  if (!config.encryption.keyring) return driver;
  // The keyring is read once at start-up; a missing or malformed file stops start-up here.
  return new EncryptedStore(driver, await loadKeyring(config.encryption.keyring));
}

async function createDriver(storage: Config['storage']): Promise<ObjectStore> {
  switch (storage.driver) {
    case 'filesystem':
      return new FilesystemStore(storage.filesystem);
    case 's3': {
      const { S3Store } = await import('./s3.js');
      return new S3Store(storage.s3);
    }
  }
}
