// The users of token auth (auth.users) and their password check. A verified name and password
// are remembered briefly, because clients ask for a token per operation and each scrypt check
// costs tens of milliseconds and megabytes; failures are never remembered, so guessing stays slow.
// Checks run at most two at a time with a short queue: scrypt runs on libuv's small thread pool,
// which the filesystem driver reads through too, so a flood of logins must not stall pulls.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { DEFAULT_COST, hashPassword, parsePasswordHash, verifyPassword } from '../../crypto/passwords.js';
import { RegistryError } from '../../registry/errors.js';

export interface UserEntry {
  name: string;
  /** A hash from `dr-registry auth hash-password`, never the password itself; none: certificate only. */
  password?: string;
}

const VERIFIED_TTL_MS = 5 * 60_000;
const CONCURRENT_CHECKS = 2;
const QUEUED_CHECKS = 32;

export class Users {
  private readonly hashes: Map<string, string>;
  private readonly verified = new LRUCache<string, true>({ max: 1000, ttl: VERIFIED_TTL_MS });
  /** Checked against for unknown names, so a wrong name takes as long as a wrong password. */
  private decoy: Promise<string> | undefined;

  private running = 0;
  private readonly waiting: Array<() => void> = [];

  /** `onVerify` is told of every scrypt verification (metrics; tests count them). */
  constructor(
    users: UserEntry[],
    private readonly onVerify?: () => void,
  ) {
    this.hashes = new Map(users.flatMap((u) => (u.password ? [[u.name, u.password] as const] : [])));
    this.names = new Set(users.map((u) => u.name));
  }

  private readonly names: Set<string>;

  /** Whether `name` is a configured user (with or without a password). */
  has(name: string): boolean {
    return this.names.has(name);
  }

  /** True when this name and password were verified within the last minutes (no scrypt work). */
  remembered(name: string, password: string): boolean {
    const hash = this.hashes.get(name);
    return hash !== undefined && this.verified.has(this.memoKey(name, password, hash));
  }

  private memoKey(name: string, password: string, hash: string): string {
    return createHash('sha256').update(name).update('\0').update(password).update('\0').update(hash).digest('base64');
  }

  /** Throws TOOMANYREQUESTS (429) when too many checks are already waiting. */
  async check(name: string, password: string): Promise<boolean> {
    const hash = this.hashes.get(name);
    if (hash === undefined) {
      // At the cost of a configured hash, so timing does not tell which names exist.
      this.decoy ??= hashPassword('decoy', parsePasswordHash(this.hashes.values().next().value ?? '') ?? DEFAULT_COST);
      const decoy = await this.decoy;
      await this.limited(() => this.verify(password, decoy));
      return false;
    }
    const memo = this.memoKey(name, password, hash);
    if (this.verified.has(memo)) return true;
    if (!(await this.limited(() => this.verify(password, hash)))) return false;
    this.verified.set(memo, true);
    return true;
  }

  private verify(password: string, hash: string): Promise<boolean> {
    this.onVerify?.();
    return verifyPassword(password, hash);
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= CONCURRENT_CHECKS) {
      if (this.waiting.length >= QUEUED_CHECKS) throw new RegistryError('TOOMANYREQUESTS', 'too many logins at once; retry shortly');
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}
