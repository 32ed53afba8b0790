// `dr-registry keys encrypt-store`: encrypts an existing plaintext store while registries serve it
// (docs/encryption.md, "Encrypting an existing store"). Two runs:
//   1. marks the store "encrypting" and stops: the operator restarts every registry with
//      encryption.keyring set (they now read plaintext and sealed objects, and write sealed ones);
//   2. rewrites every plaintext object sealed, with progress, holding the collector's lease, then
//      marks the store "encrypted".
// Resumable (an interrupted run 2 is run again) and idempotent (a run on an encrypted store does
// nothing).
import type { Config } from '../config/index.js';
import { loadKeyring } from '../crypto/keyring.js';
import { acquireLease } from '../retention/lease.js';
import { EncryptedStore } from '../storage/encrypted.js';
import { encryptExisting, type EncryptProgress } from '../storage/encrypt-existing.js';
import { holdsData, readMarker, writeMarker } from '../storage/encryption-state.js';
import { createDriver } from '../storage/index.js';

const out = (line: string) => process.stdout.write(`${line}\n`);
const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
const line = (p: EncryptProgress) =>
  `${p.scanned} object(s) scanned: ${p.encrypted} encrypted (${mib(p.bytes)}), ${p.alreadySealed} already encrypted, ${p.skipped} changed or removed meanwhile`;

export async function encryptStore(config: Config): Promise<number> {
  if (!config.encryption.keyring) {
    throw new Error('keys encrypt-store needs encryption.keyring: create one with `dr-registry keys generate --keyring FILE` and set encryption.keyring to it');
  }
  const keyring = await loadKeyring(config.encryption.keyring);
  const driver = await createDriver(config.storage);
  try {
    await driver.check();
    const marker = await readMarker(driver);
    if (marker?.state === 'encrypted') {
      out(`the store ${driver.description} is encrypted already: nothing to do`);
      return 0;
    }
    if (marker?.state !== 'encrypting') {
      if (!(await holdsData(driver))) {
        await writeMarker(driver, 'encrypted', keyring);
        out(`the store ${driver.description} holds no data: marked encrypted; start the registry with encryption.keyring set`);
        return 0;
      }
      await writeMarker(driver, 'encrypting', keyring);
      out(`step 1 of 2 done: the store ${driver.description} is marked "encrypting".`);
      out('Now restart every registry with encryption.keyring set (they read plaintext and encrypted objects and write');
      out('only encrypted ones; a registry without the keyring refuses the store), then run `dr-registry keys encrypt-store`');
      out('again to encrypt what is stored.');
      return 0;
    }
    const sealed = new EncryptedStore(driver, keyring, { acceptPlaintext: true });
    await sealed.check();
    // No collection meanwhile: a blob swept while it is being rewritten would come back.
    const lease = await acquireLease(sealed, `encrypt-store-${process.pid}`);
    try {
      let last = 0;
      let pass = 1;
      for (; ; pass++) {
        out(`pass ${pass}: encrypting every plaintext object of ${driver.description}`);
        const totals = await encryptExisting(driver, sealed, (p) => {
          if (Date.now() - last < 1000) return;
          last = Date.now();
          out(`  ${line(p)}`);
        });
        out(`  ${line(totals)}`);
        // Done when a pass found nothing left to encrypt (everything was sealed already).
        if (totals.encrypted === 0) break;
        if (pass >= 5) throw new Error('plaintext objects keep appearing: is a registry without encryption.keyring still running? Restart it with the keyring and run this again');
      }
      await writeMarker(driver, 'encrypted', keyring);
      out(`done: every object of ${driver.description} is encrypted, and the store is marked encrypted.`);
      out('Registries started from now on refuse it without encryption.keyring. Back up the keyring file.');
      return 0;
    } finally {
      await lease.release();
    }
  } finally {
    await driver.close?.();
  }
}
