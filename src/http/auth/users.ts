// The users of token auth (auth.users) and their password check. A verified name and password
// are remembered briefly, because clients ask for a token per operation and each scrypt check
// costs tens of milliseconds and megabytes; failures are never remembered, so guessing stays slow.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { hashPassword, verifyPassword } from '../../crypto/passwords.js';

export interface UserEntry {
  name: string;
  /** A hash from `dr-registry auth hash-password`, never the password itself. */
  password: string;
}

const VERIFIED_TTL_MS = 5 * 60_000;

export class Users {
  private readonly hashes: Map<string, string>;
  private readonly verified = new LRUCache<string, true>({ max: 1000, ttl: VERIFIED_TTL_MS });
  /** Checked against for unknown names, so a wrong name takes as long as a wrong password. */
  private decoy: Promise<string> | undefined;

  constructor(users: UserEntry[]) {
    this.hashes = new Map(users.map((u) => [u.name, u.password]));
  }

  async check(name: string, password: string): Promise<boolean> {
    const hash = this.hashes.get(name);
    if (hash === undefined) {
      this.decoy ??= hashPassword('decoy');
      await verifyPassword(password, await this.decoy);
      return false;
    }
    const memo = createHash('sha256').update(name).update('\0').update(password).update('\0').update(hash).digest('base64');
    if (this.verified.has(memo)) return true;
    if (!(await verifyPassword(password, hash))) return false;
    this.verified.set(memo, true);
    return true;
  }
}
