// Limits on password guessing (docs/security.md, docs/auth.md). Failed password checks are
// counted per client address and per (user name, client address) pair; past an allowance each
// further failure makes that key wait twice as long as the one before (exponential backoff, capped
// at maxDelay), and a client that must wait gets 429 TOOMANYREQUESTS with Retry-After without any
// password being checked. A user name is never limited on its own: a flood of guesses at "alice"
// from one address blocks that address (and that pair), never alice coming from another address,
// so no one can lock a named user out. Counters are forgotten after `forgetAfter` without a
// failure, and held in bounded LRU caches, so memory stays bounded whatever the flood.
import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import { LRUCache } from 'lru-cache';
import { RegistryError } from '../../registry/errors.js';
import type { Users } from './users.js';

export interface LoginLimitOptions {
  /** Failures one client address may make (all names together); after the last it must wait. */
  perAddress: number;
  /** Failures one address may make for one user name; after the last that pair must wait. */
  perNameAndAddress: number;
  /** The first wait (ms); each further failure doubles it. */
  baseDelay: number;
  maxDelay: number;
  /** A key with no failure for this long (ms) starts again from zero. */
  forgetAfter: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimitOptions = {
  perAddress: 30,
  perNameAndAddress: 5,
  baseDelay: 1000,
  maxDelay: 15 * 60_000,
  forgetAfter: 60 * 60_000,
};

const MAX_KEYS = 50_000;

interface Counter {
  failures: number;
  /** Epoch ms of the last failure. */
  last: number;
  /** Epoch ms before which this key may not try again. */
  until: number;
}

export class LoginLimits {
  private readonly addresses: LRUCache<string, Counter>;
  private readonly pairs: LRUCache<string, Counter>;

  constructor(
    private readonly options: LoginLimitOptions = DEFAULT_LOGIN_LIMITS,
    private readonly now: () => number = Date.now,
  ) {
    const cache = () => new LRUCache<string, Counter>({ max: MAX_KEYS });
    this.addresses = cache();
    this.pairs = cache();
  }

  /** Milliseconds this address must wait before it may try `name`; 0: it may try now. */
  waitMs(address: string, name: string): number {
    const now = this.now();
    const until = Math.max(this.current(this.addresses, address)?.until ?? 0, this.current(this.pairs, pairKey(address, name))?.until ?? 0);
    return Math.max(until - now, 0);
  }

  failed(address: string, name: string): void {
    this.bump(this.addresses, address, this.options.perAddress);
    this.bump(this.pairs, pairKey(address, name), this.options.perNameAndAddress);
  }

  /** A right password clears the pair (the address keeps its count: it may be guessing others). */
  succeeded(address: string, name: string): void {
    this.pairs.delete(pairKey(address, name));
  }

  /** Keys held (for tests of the memory bound). */
  get size(): number {
    return this.addresses.size + this.pairs.size;
  }

  /** Characters of all keys held (for tests of the memory bound). */
  get keyBytes(): number {
    let total = 0;
    for (const cache of [this.addresses, this.pairs]) for (const key of cache.keys()) total += key.length;
    return total;
  }

  private bump(cache: LRUCache<string, Counter>, key: string, allowance: number): void {
    const now = this.now();
    const counter = this.current(cache, key) ?? { failures: 0, last: now, until: 0 };
    counter.failures++;
    counter.last = now;
    const over = counter.failures - allowance; // the allowance-th failure waits baseDelay, each next twice as long
    if (over >= 0) {
      const delay = Math.min(this.options.baseDelay * 2 ** Math.min(over, 40), this.options.maxDelay);
      counter.until = now + delay;
    }
    cache.set(key, counter);
  }

  /** The key's counter, unless forgotten (no failure for forgetAfter; maxDelay <= forgetAfter). */
  private current(cache: LRUCache<string, Counter>, key: string): Counter | undefined {
    const counter = cache.get(key);
    if (counter && this.now() - counter.last > this.options.forgetAfter) {
      cache.delete(key);
      return undefined;
    }
    return counter;
  }
}

/**
 * A pair's key: the name by its digest, so every key has a fixed size. The name is whatever the
 * client sent (up to 64 KiB in a token POST): held as is, 50,000 of them from many addresses
 * would take gigabytes.
 */
const pairKey = (address: string, name: string) => `${address}\n${createHash('sha256').update(name).digest('base64')}`;

/**
 * The client's address as limits count it: IPv4 as is (also when mapped into IPv6), IPv6 by its
 * /64 network, since one host usually holds a whole /64.
 */
export function clientAddress(ctx: Context): string {
  const address = ctx.req.socket?.remoteAddress ?? ctx.state.connection?.remoteAddress ?? 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  return `${expandIpv6(address).slice(0, 4).join(':')}::/64`;
}

function expandIpv6(address: string): string[] {
  const [head = '', tail] = address.split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array<string>(Math.max(8 - left.length - right.length, 0)).fill('0');
  return [...left, ...zeros, ...right].map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
}

/**
 * Password checks through the limits: every login (token endpoint, admin Basic auth) goes
 * through `check`, so every failure path costs exactly one scrypt verification (Users.check runs
 * one against a decoy hash for unknown names) and every one is counted.
 */
export class Logins {
  /** Checks running or queued per address: one address cannot fill the shared queue of checks. */
  private readonly pending = new Map<string, number>();

  constructor(
    readonly users: Users,
    readonly limits: LoginLimits,
    private readonly perAddressConcurrency = PER_ADDRESS_CONCURRENCY,
  ) {}

  /** True when the password is right; throws TOOMANYREQUESTS (with Retry-After set) when the client must wait. */
  async check(ctx: Context, name: string, password: string): Promise<boolean> {
    const address = clientAddress(ctx);
    const wait = this.limits.waitMs(address, name);
    // Credentials verified minutes ago (clients log in per operation) cost no scrypt work, so the
    // cap on checks in progress does not apply to them: parallel pulls after a login are never
    // refused. The wait does: answered here, a barred address could test guesses at full speed
    // (a hash lookup each, 200 when right, 429 when wrong) whenever the user had just signed in.
    if (wait === 0 && this.users.remembered(name, password)) return true;
    const busy = (this.pending.get(address) ?? 0) >= this.perAddressConcurrency;
    if (wait > 0 || busy) {
      const seconds = Math.max(Math.ceil(wait / 1000), 1);
      ctx.set('Retry-After', String(seconds));
      throw new RegistryError('TOOMANYREQUESTS', busy ? 'too many logins at once from this address; retry shortly' : 'too many failed logins from this address; retry later', {
        retryAfterSeconds: seconds,
      });
    }
    this.pending.set(address, (this.pending.get(address) ?? 0) + 1);
    try {
      const ok = await this.users.check(name, password);
      if (ok) this.limits.succeeded(address, name);
      else this.limits.failed(address, name);
      return ok;
    } finally {
      const left = (this.pending.get(address) ?? 1) - 1;
      if (left > 0) this.pending.set(address, left);
      else this.pending.delete(address);
    }
  }
}

/**
 * Password checks one address may have running or queued at once. Users runs two at a time with
 * 32 queued for everyone: without this, one address opening a hundred connections would fill the
 * queue before its first failure was counted, and everyone else would get 429.
 */
const PER_ADDRESS_CONCURRENCY = 8;
