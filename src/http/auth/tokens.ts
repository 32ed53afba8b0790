// Bearer tokens: JWTs this registry issues at its token endpoint and checks on /v2. Signed with
// HS256 under auth.secret, which every replica shares, so any replica accepts any replica's
// token and no state is kept. The claims are those of the Distribution token protocol: the
// subject (user, "" for anonymous), the service as audience, and the granted "access" entries.
import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import { LRUCache } from 'lru-cache';
import type { AccessEntry } from './scope.js';

export interface TokenOptions {
  secret: string;
  /** The service name clients send and the token's audience (auth.service). */
  service: string;
  ttlMs: number;
}

export interface IssuedToken {
  token: string;
  expiresInSeconds: number;
  issuedAt: Date;
}

export interface VerifiedToken {
  /** The user the token was issued to; undefined for an anonymous client. */
  user: string | undefined;
  access: AccessEntry[];
}

const ISSUER = 'dr-registry';
/** Replicas' clocks may differ a little; a token is not refused for that. */
const CLOCK_TOLERANCE_SECONDS = 30;

export class Tokens {
  private readonly key: Uint8Array;
  /** Tokens whose checks passed, until they expire. */
  private readonly verified = new LRUCache<string, VerifiedToken>({ max: 10_000, ttl: 1, ttlAutopurge: false });

  constructor(private readonly options: TokenOptions) {
    this.key = new TextEncoder().encode(options.secret);
  }

  get service(): string {
    return this.options.service;
  }

  async issue(user: string | undefined, access: AccessEntry[], now = new Date()): Promise<IssuedToken> {
    const issuedAt = Math.floor(now.getTime() / 1000);
    const expiresInSeconds = Math.max(1, Math.round(this.options.ttlMs / 1000));
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(user ?? '')
      .setAudience(this.options.service)
      .setIssuedAt(issuedAt)
      .setNotBefore(issuedAt)
      .setExpirationTime(issuedAt + expiresInSeconds)
      .setJti(randomUUID())
      .sign(this.key);
    return { token, expiresInSeconds, issuedAt: new Date(issuedAt * 1000) };
  }

  /** The token's user and access, or undefined when it is not one of ours, expired, or malformed. */
  async verify(token: string): Promise<VerifiedToken | undefined> {
    // A client sends one token with every request of a pull or push; checking its signature
    // (WebCrypto HMAC, about 0.3 ms) each time cut manifest GETs by half. The exact token string
    // is the key, so only a token that passed every check is ever found here, until it expires.
    const known = this.verified.get(token);
    if (known) return known;
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        issuer: ISSUER,
        audience: this.options.service,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp', 'sub'],
      });
      const access = Array.isArray(payload.access) ? payload.access.filter(isAccessEntry) : [];
      const verified = { user: payload.sub ? payload.sub : undefined, access };
      const ttl = payload.exp! * 1000 - Date.now();
      if (ttl > 0) this.verified.set(token, verified, { ttl: Math.min(ttl, this.options.ttlMs) });
      return verified;
    } catch {
      return undefined;
    }
  }
}

function isAccessEntry(value: unknown): value is AccessEntry {
  const v = value as Partial<AccessEntry> | null;
  return (
    typeof v === 'object' && v !== null && typeof v.type === 'string' && typeof v.name === 'string' && Array.isArray(v.actions) && v.actions.every((a) => typeof a === 'string')
  );
}
