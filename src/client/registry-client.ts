// A small client for the OCI Distribution API: blobs (HEAD, GET, monolithic upload, cross-repo
// mount) and manifests (GET, PUT), with the token dance (401 + WWW-Authenticate Bearer realm,
// service, scope -> token) or Basic, https by default and plain http for loopback addresses or
// when asked (as docker does). Bodies are buffers, so any request can be retried after a 401.
import { createHash } from 'node:crypto';
import type { Credentials } from './credentials.js';
import { isLoopback } from './reference.js';

export interface ClientOptions {
  registry: string;
  credentials?: Credentials;
  /** Plain http even for non-loopback hosts. */
  insecure?: boolean;
  /** Scopes to ask for in every token (e.g. repository:a/b:pull,push). */
  scopes?: string[];
  userAgent?: string;
  /**
   * How long a registry may take to start answering a request once it has the request (60 s by
   * default); a request with a body gets its sending time on top, at a slow link's 128 KiB/s.
   */
  answerTimeoutMs?: number;
}

/** Uploads get this rate's worth of time to send their body before the answer deadline runs. */
const SLOW_LINK_BYTES_PER_MS = 128;

export class RegistryClientError extends Error {
  override readonly name = 'RegistryClientError';
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

export interface Manifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

export const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Runs `fn` over `items` with at most `limit` at a time; stops starting new ones after a failure. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

const ACCEPT_MANIFESTS = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/**
 * Per registry (scheme://host): whether it stores the body of a single POST ?digest= (true), ignores
 * it and answers 202 (false), or the first answer is awaited (a promise).
 */
const singlePost = new Map<string, boolean | Promise<void>>();

export class RegistryClient {
  readonly base: string;
  /** Request and response body bytes, for reports. */
  bytesSent = 0;
  bytesReceived = 0;
  requests = 0;
  private authorization: string | undefined;
  private readonly scopes: Set<string>;

  constructor(private readonly options: ClientOptions) {
    const scheme = options.insecure || isLoopback(options.registry) ? 'http' : 'https';
    const host = options.registry === 'docker.io' ? 'registry-1.docker.io' : options.registry;
    this.base = `${scheme}://${host}`;
    this.scopes = new Set(options.scopes ?? []);
  }

  /** One request with auth: on 401 answer the challenge once and retry. */
  async request(method: string, pathOrUrl: string, init: { headers?: Record<string, string>; body?: Buffer } = {}): Promise<Response> {
    const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${this.base}${pathOrUrl}`;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { 'user-agent': this.options.userAgent ?? 'dr-registry', ...init.headers };
      if (this.authorization && new URL(url).origin === new URL(this.base).origin) headers.authorization = this.authorization;
      if (init.body) headers['content-length'] = String(init.body.length);
      this.requests++;
      let res: Response;
      // A registry that takes the request and never answers (a hung store behind a registry
      // without deadlines) fails the command in a minute, not after undici's 5 minutes. The
      // deadline ends once the headers are in: reading a body has undici's own stall timeout.
      const answerMs = (this.options.answerTimeoutMs ?? 60_000) + Math.ceil((init.body?.length ?? 0) / SLOW_LINK_BYTES_PER_MS);
      const deadline = new AbortController();
      const timer = setTimeout(() => deadline.abort(), answerMs);
      try {
        res = await fetch(url, { method, headers, body: init.body, redirect: 'follow', signal: deadline.signal });
      } catch (err) {
        if (deadline.signal.aborted) {
          throw new RegistryClientError(`${method} ${new URL(url).pathname}: ${this.base} did not answer within ${Math.round(answerMs / 1000)} s`);
        }
        const cause = (err as { cause?: { message?: string } }).cause?.message;
        throw new RegistryClientError(`cannot reach ${this.base}: ${cause ?? (err as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
      if (init.body) this.bytesSent += init.body.length;
      if (res.status === 401 && attempt === 0) {
        const challenge = res.headers.get('www-authenticate');
        await res.body?.cancel();
        if (!challenge) throw new RegistryClientError(`${method} ${url}: 401 without a challenge`, 401, 'UNAUTHORIZED');
        await this.answer(challenge);
        continue;
      }
      return res;
    }
  }

  private async answer(challenge: string): Promise<void> {
    const scheme = challenge.slice(0, challenge.indexOf(' ')).toLowerCase();
    const params: Record<string, string> = {};
    for (const m of challenge.matchAll(/(\w+)="([^"]*)"/g)) params[m[1]!.toLowerCase()] = m[2]!;
    const creds = this.options.credentials;
    const basic = creds ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` : undefined;
    if (scheme === 'basic') {
      if (!basic) throw new RegistryClientError(`${this.options.registry} wants a user name and password (docker login, or --creds)`, 401, 'UNAUTHORIZED');
      this.authorization = basic;
      return;
    }
    if (scheme !== 'bearer' || !params.realm) throw new RegistryClientError(`unsupported auth challenge: ${challenge}`, 401);
    if (params.scope) for (const s of params.scope.split(' ')) this.scopes.add(s);
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    for (const s of this.scopes) url.searchParams.append('scope', s);
    const res = await fetch(url, { headers: basic ? { authorization: basic } : {} });
    if (!res.ok) {
      await res.body?.cancel();
      throw new RegistryClientError(`token request to ${url.origin}${url.pathname} refused: ${res.status}${basic ? '' : ' (no credentials: docker login, or --creds)'}`, res.status, 'UNAUTHORIZED');
    }
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryClientError('token endpoint answered without a token', 401);
    this.authorization = `Bearer ${token}`;
  }

  private async fail(res: Response, what: string): Promise<never> {
    let detail = '';
    let code: string | undefined;
    try {
      const body = (await res.json()) as { errors?: { code?: string; message?: string }[] };
      const e = body.errors?.[0];
      code = e?.code;
      if (e) detail = `: ${e.code} ${e.message ?? ''}`.trimEnd();
    } catch {
      /* no JSON body */
    }
    const hint = res.status === 401 || res.status === 403 ? ' (check credentials and rights)' : '';
    throw new RegistryClientError(`${what}: HTTP ${res.status}${detail}${hint}`, res.status, code);
  }

  async hasBlob(repo: string, digest: string): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`);
    await res.body?.cancel();
    if (res.ok) return true;
    if (res.status === 404) return false;
    return this.fail(res, `HEAD blob ${digest}`);
  }

  /** The subset of `digests` the repository has, asking `concurrency` at a time. */
  async existingBlobs(repo: string, digests: readonly string[], concurrency = 8): Promise<Set<string>> {
    const present = new Set<string>();
    await mapLimit(digests, concurrency, async (d) => {
      if (await this.hasBlob(repo, d)) present.add(d);
    });
    return present;
  }

  /**
   * Uploads a blob monolithically (POST ?digest= with the body, or POST then PUT with the body). With `from`, first asks for a
   * cross-repository mount from each; a 202 answer to a mount is an upload session we use.
   * Returns 'mounted' or 'uploaded'.
   */
  async putBlob(repo: string, digest: string, bytes: Buffer, from: readonly string[] = []): Promise<'mounted' | 'uploaded'> {
    let location: string | undefined;
    for (const source of from) {
      if (source === repo) continue;
      const res = await this.request('POST', `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(source)}`);
      await res.body?.cancel();
      if (res.status === 201) return 'mounted';
      if (res.status === 202) {
        location = res.headers.get('location') ?? undefined;
        break;
      }
    }
    if (!location) location = await this.startUpload(repo, digest, bytes);
    if (location === 'done') return 'uploaded';
    const url = new URL(location, this.base);
    url.searchParams.set('digest', digest);
    const res = await this.request('PUT', url.toString(), { headers: { 'content-type': 'application/octet-stream' }, body: bytes });
    if (res.status !== 201) return this.fail(res, `upload of ${digest}`);
    await res.body?.cancel();
    return 'uploaded';
  }

  /**
   * Starts an upload: monolithic in one request (POST ?digest= with the body) where the registry
   * does that, else a POST without a body. Returns 'done' when the blob is stored, or the session's
   * Location for the PUT that carries the body. A 202 to the single POST means the registry ignored
   * the body (OCI spec; CNCF Distribution does so): that is remembered per registry, and while the
   * first answer is awaited other uploads wait for it, so each body is sent once from then on.
   */
  private async startUpload(repo: string, digest: string, bytes: Buffer): Promise<string> {
    let state = singlePost.get(this.base);
    while (state instanceof Promise) {
      await state;
      state = singlePost.get(this.base);
    }
    let learnt: (() => void) | undefined;
    if (state === undefined) singlePost.set(this.base, new Promise<void>((r) => (learnt = r)));
    try {
      const single = state !== false;
      const res = await this.request('POST', `/v2/${repo}/blobs/uploads/${single ? `?digest=${encodeURIComponent(digest)}` : ''}`, {
        headers: single ? { 'content-type': 'application/octet-stream' } : {},
        body: single ? bytes : undefined,
      });
      if (single && res.status === 201) {
        await res.body?.cancel();
        if (learnt) singlePost.set(this.base, true);
        return 'done';
      }
      if (res.status !== 202) return await this.fail(res, `upload of ${digest}`);
      await res.body?.cancel();
      if (single) singlePost.set(this.base, false);
      const location = res.headers.get('location');
      if (!location) throw new RegistryClientError('upload started without a Location');
      return location;
    } finally {
      // Not learnt (an error): the next upload tries the single POST again.
      if (learnt) {
        if (singlePost.get(this.base) instanceof Promise) singlePost.delete(this.base);
        learnt();
      }
    }
  }

  /** A blob's bytes, verified against its digest. */
  async getBlob(repo: string, digest: string): Promise<Buffer> {
    const res = await this.request('GET', `/v2/${repo}/blobs/${digest}`);
    if (!res.ok) return this.fail(res, `GET blob ${digest}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    this.bytesReceived += bytes.length;
    if (digest.startsWith('sha256:') && sha256(bytes) !== digest) {
      throw new RegistryClientError(`blob ${digest} is corrupt: its bytes hash to ${sha256(bytes)}`, undefined, 'DIGEST_INVALID');
    }
    return bytes;
  }

  /** A manifest by tag or digest, or undefined when the registry has none. */
  async getManifest(repo: string, reference: string): Promise<Manifest | undefined> {
    const res = await this.request('GET', `/v2/${repo}/manifests/${reference}`, { headers: { accept: ACCEPT_MANIFESTS } });
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (!res.ok) return this.fail(res, `GET manifest ${reference}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    this.bytesReceived += bytes.length;
    const digest = sha256(bytes);
    if (reference.startsWith('sha256:') && digest !== reference) throw new RegistryClientError(`manifest ${reference} is corrupt`, undefined, 'DIGEST_INVALID');
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    return { bytes, mediaType, digest };
  }

  /** The repository's tags (the first page: up to `n`), or [] when it has none. */
  async listTags(repo: string, n = 1000): Promise<string[]> {
    const res = await this.request('GET', `/v2/${repo}/tags/list?n=${n}`);
    if (res.status === 404) {
      await res.body?.cancel();
      return [];
    }
    if (!res.ok) return this.fail(res, `GET tags of ${repo}`);
    const body = (await res.json()) as { tags?: string[] | null };
    return body.tags ?? [];
  }

  async putManifest(repo: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const res = await this.request('PUT', `/v2/${repo}/manifests/${reference}`, { headers: { 'content-type': mediaType }, body: bytes });
    if (res.status !== 201) return this.fail(res, `PUT manifest ${reference}`);
    await res.body?.cancel();
    return res.headers.get('docker-content-digest') ?? sha256(bytes);
  }
}
