// Token auth on the real server: the challenge, the token endpoint (GET with Basic credentials,
// POST password grant), rights per repository and action, anonymous access, forged and expired
// tokens, the catalog, mounts and HEAD-linking limited to what the client may read.
import { randomBytes } from 'node:crypto';
import { SignJWT, decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/crypto/passwords.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { OCI_MANIFEST, errorCode, imageManifest, raw, sha256 } from './client.js';

const SECRET = randomBytes(32).toString('base64url');
const CHEAP = { logN: 10, r: 8, p: 1 }; // tests need hashes, not slow ones

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('token auth', () => {
  let registry: TestRegistry;
  let url: string;

  beforeAll(async () => {
    const users = [
      { name: 'alice', password: await hashPassword('alice-pw', CHEAP) },
      { name: 'bob', password: await hashPassword('bob-pw', CHEAP) },
    ];
    const access = [
      { repositories: 'dr/*', users: ['alice'], actions: ['pull', 'push', 'delete'] },
      { repositories: 'dr/shared', users: ['*'], actions: ['pull'] },
      { repositories: 'bob/*', users: ['bob'], actions: ['pull', 'push'] },
      { repositories: 'public/*', users: ['anonymous'], actions: ['pull'] },
    ];
    registry = await startTestRegistry({
      env: {
        DRREG_AUTH_SECRET: SECRET,
        DRREG_AUTH_USERS: JSON.stringify(users),
        DRREG_AUTH_ACCESS: JSON.stringify(access),
        DRREG_DEDUP_LINKEXISTINGONHEAD: 'true',
        DRREG_AUTH_ADMINS: '["alice"]',
      },
    });
    url = registry.url;
  });
  afterAll(() => registry?.stop());

  async function token(credentials: string | undefined, ...scopes: string[]): Promise<string> {
    const query = new URLSearchParams([['service', 'dr-registry'], ...scopes.map((s): [string, string] => ['scope', s])]);
    const r = await fetch(`${url}/auth/token?${query}`, { headers: credentials ? { Authorization: credentials } : {} });
    expect(r.status, await r.clone().text()).toBe(200);
    return ((await r.json()) as { token: string }).token;
  }

  const authed = (t: string, init: RequestInit = {}) => ({ ...init, headers: { ...(init.headers as Record<string, string>), Authorization: `Bearer ${t}` } });

  async function pushImageAs(t: string, repo: string, tag: string) {
    const config = Buffer.from(JSON.stringify({ os: 'linux', nonce: randomBytes(4).toString('hex') }));
    const layer = randomBytes(2000);
    for (const blob of [config, layer]) {
      const r = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, authed(t, { method: 'POST', body: blob }));
      expect(r.status, await r.text()).toBe(201);
    }
    const manifest = JSON.stringify(imageManifest(config, [layer]));
    const r = await fetch(`${url}/v2/${repo}/manifests/${tag}`, authed(t, { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } }));
    expect(r.status, await r.text()).toBe(201);
    return { layer: sha256(layer), manifest: sha256(manifest) };
  }

  it('challenges a client without a token with the realm and service, as Distribution does', async () => {
    const r = await fetch(`${url}/v2/`);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe(`Bearer realm="${url}/auth/token",service="dr-registry"`);
    expect(errorCode(await r.text())).toBe('UNAUTHORIZED');

    const pull = await fetch(`${url}/v2/dr/app/manifests/latest`);
    expect(pull.status).toBe(401);
    expect(pull.headers.get('www-authenticate')).toContain('scope="repository:dr/app:pull"');
    const body = (await pull.json()) as { errors: Array<{ code: string; detail: unknown }> };
    expect(body.errors[0]).toMatchObject({ code: 'UNAUTHORIZED', detail: [{ Type: 'repository', Name: 'dr/app', Action: 'pull' }] });
  });

  it('keeps a hostile Host header out of the challenge', async () => {
    const r = await raw(url, 'GET', '/v2/', { Host: 'evil.example",realm="http://evil' });
    expect(r.status).toBe(401);
    // One realm and one service, whatever the header held; no quote gets through.
    expect(r.headers['www-authenticate']).toMatch(/^Bearer realm="http:\/\/[A-Za-z0-9.:[\]-]*\/auth\/token",service="dr-registry"$/);
  });

  it('issues a token for good credentials only (what docker login checks)', async () => {
    const failures = async () => (await registry.metrics.loginFailures.get()).values[0]?.value ?? 0;
    const failedBefore = await failures();
    const wrong = await fetch(`${url}/auth/token?service=dr-registry`, { headers: { Authorization: basic('alice', 'nope') } });
    expect(wrong.status).toBe(401);
    expect(errorCode(await wrong.text())).toBe('UNAUTHORIZED');
    const unknown = await fetch(`${url}/auth/token?service=dr-registry`, { headers: { Authorization: basic('mallory', 'alice-pw') } });
    expect(unknown.status).toBe(401);
    expect((await failures()) - failedBefore).toBe(2); // drreg_auth_login_failures_total
    const otherService = await fetch(`${url}/auth/token?service=elsewhere`, { headers: { Authorization: basic('alice', 'alice-pw') } });
    expect(otherService.status).toBe(400);

    const ok = await fetch(`${url}/auth/token?service=dr-registry`, { headers: { Authorization: basic('alice', 'alice-pw') } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('cache-control')).toBe('no-store');
    const body = (await ok.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(300);
    expect(Math.abs(Date.parse(body.issued_at) - Date.now())).toBeLessThan(5000);
    expect((await fetch(`${url}/v2/`, authed(body.token))).status).toBe(200);
  });

  it('grants each requested action the rules allow, and nothing more', async () => {
    const scope = 'repository:dr/app:pull,push,delete';
    const claims = async (credentials: string | undefined) => decodeJwt(await token(credentials, scope, 'repository:bob/x:push')).access;
    expect(await claims(basic('alice', 'alice-pw'))).toEqual([
      { type: 'repository', name: 'dr/app', actions: ['pull', 'push', 'delete'] },
      { type: 'repository', name: 'bob/x', actions: [] },
    ]);
    expect(await claims(basic('bob', 'bob-pw'))).toEqual([
      { type: 'repository', name: 'dr/app', actions: [] },
      { type: 'repository', name: 'bob/x', actions: ['push'] },
    ]);
    expect(decodeJwt(await token(basic('bob', 'bob-pw'), 'repository:dr/shared:*')).access).toEqual([{ type: 'repository', name: 'dr/shared', actions: ['pull'] }]);
    expect(decodeJwt(await token(undefined, 'repository:public/base:pull,push')).access).toEqual([{ type: 'repository', name: 'public/base', actions: ['pull'] }]);
  });

  it('lets a user push and pull where the rules say, and answers others 401 insufficient_scope', async () => {
    const alice = await token(basic('alice', 'alice-pw'), 'repository:dr/app:pull,push');
    const pushed = await pushImageAs(alice, 'dr/app', 'latest');
    const get = await fetch(`${url}/v2/dr/app/manifests/latest`, authed(alice, { headers: { Accept: OCI_MANIFEST } }));
    expect(get.status).toBe(200);
    expect(sha256(Buffer.from(await get.arrayBuffer()))).toBe(pushed.manifest);

    // bob may not read dr/app: his token for it is empty, and the registry says so.
    const bob = await token(basic('bob', 'bob-pw'), 'repository:dr/app:pull');
    const denied = await fetch(`${url}/v2/dr/app/manifests/latest`, authed(bob));
    expect(denied.status).toBe(401);
    expect(denied.headers.get('www-authenticate')).toContain('scope="repository:dr/app:pull",error="insufficient_scope"');
    expect((await fetch(`${url}/v2/dr/app/blobs/${pushed.layer}`, authed(bob))).status).toBe(401);

    // A token for one repository grants nothing in another, even for its owner.
    const up = await fetch(`${url}/v2/dr/other/blobs/uploads/`, authed(alice, { method: 'POST' }));
    expect(up.status).toBe(401);
    expect(up.headers.get('www-authenticate')).toContain('scope="repository:dr/other:pull,push",error="insufficient_scope"');

    // Deleting needs the delete action, not just push.
    const noDelete = await fetch(`${url}/v2/dr/app/manifests/${pushed.manifest}`, authed(alice, { method: 'DELETE' }));
    expect(noDelete.status).toBe(401);
    expect(noDelete.headers.get('www-authenticate')).toContain('scope="repository:dr/app:delete"');
  });

  it('serves anonymous clients what the rules give "anonymous", and only that', async () => {
    const bob = await token(basic('bob', 'bob-pw'), 'repository:public/base:pull,push');
    expect(decodeJwt(bob).access).toEqual([{ type: 'repository', name: 'public/base', actions: ['pull'] }]);
    // Nobody may push to public/ by the rules: seed it with a token the test signs.
    expect((await fetch(`${url}/v2/public/base/blobs/uploads/`, authed(bob, { method: 'POST' }))).status).toBe(401);
    const seeder = await forge(SECRET, { sub: 'seeder', access: [{ type: 'repository', name: 'public/base', actions: ['push', 'pull'] }] });
    const pushed = await pushImageAs(seeder, 'public/base', 'v1');

    const anonymous = await token(undefined, 'repository:public/base:pull');
    expect((await fetch(`${url}/v2/public/base/manifests/v1`, authed(anonymous, { headers: { Accept: OCI_MANIFEST } }))).status).toBe(200);
    expect((await fetch(`${url}/v2/public/base/blobs/${pushed.layer}`, authed(anonymous))).status).toBe(200);
    const noPush = await token(undefined, 'repository:public/base:push');
    expect((await fetch(`${url}/v2/public/base/blobs/uploads/`, authed(noPush, { method: 'POST' }))).status).toBe(401);
  });

  it('refuses forged, expired and foreign-service tokens', async () => {
    const access = [{ type: 'repository', name: 'dr/app', actions: ['pull'] }];
    const cases = {
      'another secret': await forge(randomBytes(32).toString('base64url'), { sub: 'alice', access }),
      expired: await forge(SECRET, { sub: 'alice', access }, { expiresAt: Math.floor(Date.now() / 1000) - 120 }),
      'another service': await forge(SECRET, { sub: 'alice', access }, { audience: 'elsewhere' }),
      'no signature': `${(await forge(SECRET, { sub: 'alice', access })).split('.').slice(0, 2).join('.')}.`,
    };
    for (const [what, t] of Object.entries(cases)) {
      const r = await fetch(`${url}/v2/dr/app/tags/list`, authed(t));
      expect(r.status, what).toBe(401);
      expect(r.headers.get('www-authenticate'), what).toContain('error="invalid_token"');
    }
    const basicOnV2 = await fetch(`${url}/v2/`, { headers: { Authorization: basic('alice', 'alice-pw') } });
    expect(basicOnV2.status).toBe(401);
  });

  it('lists in the catalog only the repositories the user may pull', async () => {
    const alice = await token(basic('alice', 'alice-pw'), 'repository:dr/cat:pull,push');
    await pushImageAs(alice, 'dr/cat', 'latest');
    const bobPush = await token(basic('bob', 'bob-pw'), 'repository:bob/cat:pull,push');
    await pushImageAs(bobPush, 'bob/cat', 'latest');

    const list = async (credentials: string | undefined) => {
      const r = await fetch(`${url}/v2/_catalog`, authed(await token(credentials, 'registry:catalog:*')));
      expect(r.status).toBe(200);
      return ((await r.json()) as { repositories: string[] }).repositories;
    };
    const forAlice = await list(basic('alice', 'alice-pw'));
    expect(forAlice).toContain('dr/cat');
    expect(forAlice.some((n) => n.startsWith('bob/'))).toBe(false);
    const forBob = await list(basic('bob', 'bob-pw'));
    expect(forBob).toContain('bob/cat');
    expect(forBob.some((n) => n.startsWith('dr/') && n !== 'dr/shared')).toBe(false);
    // Without the catalog scope there is no listing.
    expect((await fetch(`${url}/v2/_catalog`, authed(await token(basic('alice', 'alice-pw'))))).status).toBe(401);
  });

  it('mounts only from a repository the token may pull, and otherwise starts an upload', async () => {
    const alice = await token(basic('alice', 'alice-pw'), 'repository:dr/src:pull,push');
    const { layer } = await pushImageAs(alice, 'dr/src', 'latest');
    const bob = await token(basic('bob', 'bob-pw'), 'repository:bob/dst:pull,push', 'repository:dr/src:pull');
    const r = await fetch(`${url}/v2/bob/dst/blobs/uploads/?mount=${layer}&from=dr/src`, authed(bob, { method: 'POST' }));
    expect(r.status).toBe(202); // not 201: bob cannot read dr/src
    expect((await fetch(`${url}/v2/bob/dst/blobs/${layer}`, { ...authed(bob), method: 'HEAD' })).status).toBe(404);

    const aliceBoth = await token(basic('alice', 'alice-pw'), 'repository:dr/dst:pull,push', 'repository:dr/src:pull');
    const mounted = await fetch(`${url}/v2/dr/dst/blobs/uploads/?mount=${layer}&from=dr/src`, authed(aliceBoth, { method: 'POST' }));
    expect(mounted.status).toBe(201);
  });

  it('links a blob held elsewhere on HEAD only from a repository the user may read', async () => {
    const alice = await token(basic('alice', 'alice-pw'), 'repository:dr/held:pull,push');
    const { layer } = await pushImageAs(alice, 'dr/held', 'latest');
    // bob knows the digest, but cannot read dr/held: his HEAD must not link it into his repository.
    const bob = await token(basic('bob', 'bob-pw'), 'repository:bob/probe:pull,push');
    expect((await fetch(`${url}/v2/bob/probe/blobs/${layer}`, { ...authed(bob), method: 'HEAD' })).status).toBe(404);
    expect((await fetch(`${url}/v2/bob/probe/blobs/${layer}`, authed(bob))).status).toBe(404);
    // alice can read dr/held, so her next system's push skips the upload.
    const next = await token(basic('alice', 'alice-pw'), 'repository:dr/next:pull,push');
    expect((await fetch(`${url}/v2/dr/next/blobs/${layer}`, { ...authed(next), method: 'HEAD' })).status).toBe(200);
  });

  it('issues tokens by OAuth2 password grant, and refuses other grants so clients fall back to GET', async () => {
    const form = (fields: Record<string, string>) => ({
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
    const ok = await fetch(`${url}/auth/token`, form({ grant_type: 'password', username: 'alice', password: 'alice-pw', service: 'dr-registry', scope: 'repository:dr/app:pull', client_id: 'test' }));
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { access_token: string; expires_in: number };
    expect(decodeJwt(body.access_token).access).toEqual([{ type: 'repository', name: 'dr/app', actions: ['pull'] }]);
    expect((await fetch(`${url}/v2/dr/app/tags/list`, authed(body.access_token))).status).toBe(200);

    const wrong = await fetch(`${url}/auth/token`, form({ grant_type: 'password', username: 'alice', password: 'nope', service: 'dr-registry' }));
    expect(wrong.status).toBe(401);
    const refresh = await fetch(`${url}/auth/token`, form({ grant_type: 'refresh_token', refresh_token: 'x', service: 'dr-registry' }));
    expect(refresh.status).toBe(400);
    expect(await refresh.json()).toEqual({ error: 'unsupported_grant_type' });
  });
  it('opens the admin API to auth.admins by password or by a registry:admin:* token, to nobody else', async () => {
    const storage = (authorization?: string) => fetch(`${url}/admin/v1/storage`, { headers: authorization ? { Authorization: authorization } : {} });
    expect((await storage(basic('alice', 'alice-pw'))).status).toBe(200);
    const refused = await storage(basic('bob', 'bob-pw'));
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Basic realm="dr-registry admin"');
    expect((await storage(basic('alice', 'wrong'))).status).toBe(401);
    expect((await storage()).status).toBe(401);

    const adminToken = await token(basic('alice', 'alice-pw'), 'registry:admin:*');
    expect(decodeJwt(adminToken).access).toEqual([{ type: 'registry', name: 'admin', actions: ['*'] }]);
    expect((await storage(`Bearer ${adminToken}`)).status).toBe(200);
    // An admin's token for repositories is not an admin token; bob asking for the scope gets nothing.
    expect((await storage(`Bearer ${await token(basic('alice', 'alice-pw'), 'repository:dr/app:pull')}`)).status).toBe(401);
    const bobs = await token(basic('bob', 'bob-pw'), 'registry:admin:*');
    expect(decodeJwt(bobs).access).toEqual([]);
    expect((await storage(`Bearer ${bobs}`)).status).toBe(401);
    // A forged admin-scoped token for alice fails its signature.
    const forged = await forge(randomBytes(32).toString('base64url'), { sub: 'alice', access: [{ type: 'registry', name: 'admin', actions: ['*'] }] });
    expect((await storage(`Bearer ${forged}`)).status).toBe(401);
  });
});

/** A token signed here, as a stolen or made-up one would be. */
async function forge(secret: string, claims: { sub: string; access: unknown[] }, options: { expiresAt?: number; audience?: string } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ access: claims.access })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('dr-registry')
    .setSubject(claims.sub)
    .setAudience(options.audience ?? 'dr-registry')
    .setIssuedAt(now - 300)
    .setExpirationTime(options.expiresAt ?? now + 300)
    .sign(new TextEncoder().encode(secret));
}
