// Start-up checks of the S3 driver against real Swift: a wrong key or endpoint is refused with a
// message naming the endpoint and bucket; a missing bucket is created (or refused when told not to).
import { describe, expect, it } from 'vitest';
import { StorageUnavailableError } from '../../src/storage/errors.js';
import { S3Store } from '../../src/storage/s3.js';
import { removeBucket, swiftOptions } from '../helpers/stores.js';

describe('S3 start-up check', () => {
  it('refuses a wrong secret key, naming endpoint and bucket', async () => {
    const options = { ...swiftOptions(), secretKey: 'not-the-secret' };
    const check = new S3Store(options).check();
    await expect(check).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(new S3Store(options).check()).rejects.toThrow(`${options.endpoint} bucket ${options.bucket}`);
  });

  it('refuses an endpoint where nothing listens', async () => {
    const options = { ...swiftOptions(), endpoint: 'http://127.0.0.1:1' };
    await expect(new S3Store(options).check()).rejects.toThrow(/s3 store http:\/\/127\.0\.0\.1:1 bucket .* is not usable: ECONNREFUSED/);
  });

  it('creates a missing bucket, or refuses when createBucket is false', async () => {
    const refused = { ...swiftOptions(), createBucket: false };
    await expect(new S3Store(refused).check()).rejects.toThrow(/bucket does not exist \(storage\.s3\.createBucket is false\)/);
    const options = swiftOptions();
    await new S3Store(options).check();
    await new S3Store({ ...options, createBucket: false }).check(); // exists now
    await removeBucket(options);
  });
});
