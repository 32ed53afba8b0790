// What an Authorization header carries: HTTP Basic credentials or a Bearer token. One parser for
// the token endpoint, the /v2 gate and the admin guard.

/** The name and password of `Basic <base64(name:password)>`; undefined for anything else. */
export function basicCredentials(header: string): { name: string; password: string } | undefined {
  const encoded = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header)?.[1];
  if (!encoded) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':'); // user names never hold ":" (config validation)
  return colon > 0 ? { name: decoded.slice(0, colon), password: decoded.slice(colon + 1) } : undefined;
}

/** The token of `Bearer <token>`; undefined for anything else. */
export function bearerToken(header: string): string | undefined {
  return /^Bearer\s+(.+)$/i.exec(header)?.[1];
}
