// Request log lines name who made the request and from where: the user the token endpoint, the
// /v2 gate or the admin guard admitted (admin.token shows as "admin.token"), and the client's
// address; a refused or anonymous request names no user.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../../src/crypto/passwords.js';
import { startTestRegistry, type RequestLine, type TestRegistry } from '../../helpers/registry.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('request log: user and client', () => {
  let registry: TestRegistry;
  const requests: RequestLine[] = [];
  const ADMIN_TOKEN = randomBytes(16).toString('hex');

  beforeAll(async () => {
    registry = await startTestRegistry({
      requests,
      env: {
        DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
        DRREG_AUTH_USERS: JSON.stringify([{ name: 'alice', password: await hashPassword('alice-pw', { logN: 10, r: 8, p: 1 }) }]),
        DRREG_AUTH_ACCESS: JSON.stringify([{ repositories: 'dr/*', users: ['alice'], actions: ['pull', 'push'] }]),
        DRREG_AUTH_ADMINS: '["alice"]',
        DRREG_ADMIN_TOKEN: ADMIN_TOKEN,
      },
    });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  /** Sends a request with an id and returns its log line, once written. */
  async function logged(path: string, headers: Record<string, string> = {}): Promise<RequestLine> {
    const id = `rl-${randomBytes(6).toString('hex')}`;
    const res = await fetch(`${registry.url}${path}`, { headers: { ...headers, 'X-Request-Id': id } });
    await res.arrayBuffer();
    for (const end = Date.now() + 5000; Date.now() < end; await new Promise((r) => setTimeout(r, 10))) {
      const line = requests.find((r) => r.requestId === id);
      if (line) return line;
    }
    throw new Error(`no log line for ${path}`);
  }

  it('names the user of a token, of Basic credentials at the token endpoint and at the admin API, and the client address', async () => {
    const tokenLine = await logged('/auth/token?service=dr-registry&scope=repository:dr/app:pull', { Authorization: basic('alice', 'alice-pw') });
    expect(tokenLine).toMatchObject({ user: 'alice', client: '127.0.0.1', status: 200 });

    const res = await fetch(`${registry.url}/auth/token?service=dr-registry&scope=repository:dr/app:pull`, { headers: { Authorization: basic('alice', 'alice-pw') } });
    const { token } = (await res.json()) as { token: string };
    expect(await logged('/v2/dr/app/tags/list', { Authorization: `Bearer ${token}` })).toMatchObject({ user: 'alice', client: '127.0.0.1', status: 404 });
    // Refused for scope: still names who asked.
    expect(await logged('/v2/dr/other/tags/list', { Authorization: `Bearer ${token}` })).toMatchObject({ user: 'alice', status: 401 });

    expect(await logged('/admin/v1/storage', { Authorization: basic('alice', 'alice-pw') })).toMatchObject({ user: 'alice', status: 200 });
    expect(await logged('/admin/v1/storage', { Authorization: `Bearer ${ADMIN_TOKEN}` })).toMatchObject({ user: 'admin.token', status: 200 });
  });

  it('names no user for anonymous or refused requests', async () => {
    const anonymous = await logged('/v2/dr/app/tags/list');
    expect(anonymous.status).toBe(401);
    expect(anonymous.user).toBeUndefined();
    expect(anonymous.client).toBe('127.0.0.1');
    const wrong = await logged('/auth/token?service=dr-registry', { Authorization: basic('alice', 'nope') });
    expect(wrong.status).toBe(401);
    expect(wrong.user).toBeUndefined();
    const badAdmin = await logged('/admin/v1/storage', { Authorization: `Bearer ${'x'.repeat(32)}` });
    expect(badAdmin.status).toBe(401);
    expect(badAdmin.user).toBeUndefined();
  });
});
