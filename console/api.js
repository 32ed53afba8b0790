// The admin API as the console uses it: every call carries the operator's credentials from
// session storage (this tab only); a 401 signs the console out with a message saying why.

const STORAGE_KEY = 'dr-registry.console.credentials';

export class Unauthorized extends Error {
  name = 'Unauthorized';
}

export class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

/** { kind: 'basic', user, password } or { kind: 'bearer', token }, or null. */
export function credentials() {
  try {
    const value = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null');
    return value && (value.kind === 'basic' || value.kind === 'bearer') ? value : null;
  } catch {
    return null;
  }
}

export function saveCredentials(value) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(value));
}

export function clearCredentials() {
  sessionStorage.removeItem(STORAGE_KEY);
}

function authorization(c) {
  if (c.kind === 'bearer') return `Bearer ${c.token}`;
  // Basic is base64 of UTF-8 "user:password"; btoa takes one byte per character.
  const utf8 = new TextEncoder().encode(`${c.user}:${c.password}`);
  return `Basic ${btoa(String.fromCharCode(...utf8))}`;
}

/**
 * Calls /admin/v1{path}. Returns the JSON body (null for 204, or for 404 with allow404: an
 * endpoint this registry version does not have). Throws Unauthorized on 401, ApiError otherwise.
 */
export async function api(path, { method = 'GET', body, allow404 = false, creds = credentials() } = {}) {
  if (!creds) throw new Unauthorized('Sign in to continue.');
  const headers = { Authorization: authorization(creds), Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    // credentials "omit": no cookies, and no browser password prompt on a 401 challenge.
    res = await fetch(`/admin/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'NETWORK', `Cannot reach the registry (${err.message}). Is it running, and is this the right address?`);
  }
  if (res.status === 401) throw new Unauthorized('The registry refused these credentials.');
  if (res.status === 404 && allow404) return null;
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const e = data?.errors?.[0];
    const detail = e?.detail?.reason ?? e?.detail?.message;
    const message = `${e?.message ?? res.statusText ?? 'request failed'}${detail ? `: ${detail}` : ''}`;
    throw new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, message, e?.detail);
  }
  return data;
}

/** Runs fn over items, at most `limit` at once. */
export async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
