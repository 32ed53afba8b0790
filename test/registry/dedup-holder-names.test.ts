// The holders/ reverse index writes "/" in a repository name as "~" (src/registry/paths.ts). A
// name with "~" must never reach it, or a repository "a~b" could pass for "a/b" and a HEAD link a
// blob from a repository its caller may not pull. It does not: such a name is refused before any
// store call, the token endpoint grants nothing for it, and a HEAD from a repository the caller
// may push to does not link a blob held only in one it may not pull.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hashPassword } from '../../src/crypto/passwords.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { sha256 } from '../http/client.js';

let registry: TestRegistry;
const CHEAP = { logN: 10, r: 8, p: 1 };

beforeAll(async () => {
  const password = await hashPassword('pw', CHEAP);
  registry = await startTestRegistry({
    env: {
      DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
      DRREG_AUTH_USERS: JSON.stringify(['root', 'mallory'].map((name) => ({ name, password }))),
      DRREG_AUTH_ACCESS: JSON.stringify([
        { repositories: '*', users: ['root'], actions: ['pull', 'push'] },
        // Names that differ from the secret a/b only where the holder key writes "/" ("*" would
        // cross "/", so each is named).
        ...['a~b', 'ab', 'a-b', 'a_b', 'a.b'].map((repositories) => ({ repositories, users: ['mallory'], actions: ['pull', 'push'] })),
      ]),
    },
  });
});
afterAll(async () => registry?.stop());

async function token(user: string, repo: string): Promise<{ token: string; access: Array<{ name: string }> }> {
  const r = await fetch(`${registry.url}/auth/token?service=dr-registry&scope=repository:${repo}:pull,push`, {
    headers: { Authorization: `Basic ${Buffer.from(`${user}:pw`).toString('base64')}` },
  });
  expect(r.status).toBe(200);
  const { token: t } = (await r.json()) as { token: string };
  const claims = JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { access?: Array<{ name: string }> };
  return { token: t, access: claims.access ?? [] };
}

it('a repository named a~b is neither granted nor served, and cannot link a/b blobs', async () => {
  const secret = randomBytes(512);
  const digest = sha256(secret);
  const up = await fetch(`${registry.url}/v2/a/b/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    body: secret,
    headers: { Authorization: `Bearer ${(await token('root', 'a/b')).token}` },
  });
  expect(up.status).toBe(201);

  const tilde = await token('mallory', 'a~b');
  expect(tilde.access).toEqual([]);
  for (const method of ['HEAD', 'GET']) {
    const r = await fetch(`${registry.url}/v2/a~b/blobs/${digest}`, { method, headers: { Authorization: `Bearer ${tilde.token}` } });
    expect(r.status, method).not.toBe(200);
    expect([400, 401, 404]).toContain(r.status);
  }
  // Mallory's own repositories: a HEAD does not link the blob held only in a/b.
  for (const repo of ['ab', 'a-b', 'a_b', 'a.b']) {
    const t = (await token('mallory', repo)).token;
    const head = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: { Authorization: `Bearer ${t}` } });
    expect(head.status, repo).toBe(404);
    const get = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`, { headers: { Authorization: `Bearer ${t}` } });
    expect(get.status, repo).toBe(404);
  }
  // And root, who may read a/b, gets the link (the mechanism works; it is the rights that said no).
  const rootHead = await fetch(`${registry.url}/v2/ab/blobs/${digest}`, { method: 'HEAD', headers: { Authorization: `Bearer ${(await token('root', 'ab')).token}` } });
  expect(rootHead.status).toBe(200);
});
