import { describe, expect, it } from 'vitest';
import { hashPassword, parsePasswordHash, verifyPassword } from '../../src/crypto/passwords.js';

const CHEAP = { logN: 10, r: 8, p: 1 };

describe('password hashes', () => {
  it('verifies the password it was made from, and nothing else', async () => {
    const hash = await hashPassword('s3cret ünïcode', CHEAP);
    expect(hash).toMatch(/^scrypt\$10\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(await verifyPassword('s3cret ünïcode', hash)).toBe(true);
    // The same text in another Unicode normal form is the same password.
    expect(await verifyPassword('s3cret u\u0308ni\u0308code', hash)).toBe(true);
    expect(await verifyPassword('s3cret unicode', hash)).toBe(false);
    expect(await verifyPassword('', hash)).toBe(false);
  });

  it('salts: one password hashes differently each time', async () => {
    expect(await hashPassword('same', CHEAP)).not.toBe(await hashPassword('same', CHEAP));
  });

  it('refuses malformed hashes and costs outside sane bounds', async () => {
    const good = await hashPassword('pw', CHEAP);
    expect(parsePasswordHash(good)).toBeDefined();
    for (const bad of ['pw', good.replace('scrypt$', 'bcrypt$'), good.replace('$10$', '$30$'), good.replace('$10$', '$4$'), `${good}x`, good.slice(0, -1)]) {
      expect(parsePasswordHash(bad), bad).toBeUndefined();
      expect(await verifyPassword('pw', bad), bad).toBe(false);
    }
  });
});
