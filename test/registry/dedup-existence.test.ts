// The existence check behind HEAD-linking (issue 10, item 7; docs/dedup.md): a caller who may not
// read the repository holding a blob cannot tell it from an absent blob (same status, same store
// calls, operation by operation), and the check costs the same few calls however many
// repositories the registry has.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/crypto/passwords.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { sha256 } from '../http/client.js';

const CHEAP = { logN: 10, r: 8, p: 1 };
const REPOSITORIES = 100;

/** Store calls so far, by operation. */
async function storeCalls(registry: TestRegistry): Promise<Record<string, number>> {
  const calls: Record<string, number> = {};
  for (const v of (await registry.metrics.storeOperations.get()).values) {
    const op = String(v.labels.operation);
    calls[op] = (calls[op] ?? 0) + v.value;
  }
  return calls;
}

function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [op, n] of Object.entries(after)) if (n !== (before[op] ?? 0)) d[op] = n - (before[op] ?? 0);
  return d;
}

describe('HEAD of a blob held elsewhere, with token auth', () => {
  let registry: TestRegistry;
  let url: string;

  beforeAll(async () => {
    const password = await hashPassword('pw', CHEAP);
    registry = await startTestRegistry({
      env: {
        DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
        DRREG_AUTH_USERS: JSON.stringify(['alice', 'bob'].map((name) => ({ name, password }))),
        DRREG_AUTH_ACCESS: JSON.stringify([
          { repositories: 'a/*', users: ['alice'], actions: ['pull', 'push'] },
          { repositories: 'b/*', users: ['bob'], actions: ['pull', 'push'] },
        ]),
      },
    });
    url = registry.url;
  });
  afterAll(() => registry?.stop());

  async function token(user: string, repo: string): Promise<string> {
    const r = await fetch(`${url}/auth/token?service=dr-registry&scope=repository:${repo}:pull,push`, {
      headers: { Authorization: `Basic ${Buffer.from(`${user}:pw`).toString('base64')}` },
    });
    expect(r.status).toBe(200);
    return ((await r.json()) as { token: string }).token;
  }

  async function push(user: string, repo: string, blob: Buffer) {
    const r = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', body: blob, headers: { Authorization: `Bearer ${await token(user, repo)}` } });
    expect(r.status).toBe(201);
  }

  /** Status and store calls of one HEAD. */
  async function head(t: string, repo: string, digest: string) {
    const before = await storeCalls(registry);
    const r = await fetch(`${url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: { Authorization: `Bearer ${t}` } });
    return { status: r.status, calls: delta(await storeCalls(registry), before) };
  }

  it('answers a caller who may not read the holder exactly as for an absent blob', async () => {
    const secret = randomBytes(1000);
    await push('alice', 'a/holder', secret);
    // Many repositories: the check must not grow with them.
    for (let i = 0; i < REPOSITORIES; i++) await push('alice', `a/r${i}`, Buffer.from(`filler ${i}`));

    const bob = await token('bob', 'b/app');
    const held = await head(bob, 'b/app', sha256(secret));
    const absent = await head(bob, 'b/app', sha256(randomBytes(1000)));
    expect(held.status).toBe(404);
    expect(absent.status).toBe(404);
    expect(held.calls).toEqual(absent.calls);
    const total = Object.values(held.calls).reduce((n, c) => n + c, 0);
    expect(total).toBeLessThanOrEqual(6); // not proportional to the 100 repositories

    // A caller who may read the holder gets it linked (and B's own HEAD shows nothing of it).
    const alice = await token('alice', 'a/next');
    const linked = await head(alice, 'a/next', sha256(secret));
    expect(linked.status).toBe(200);
    expect((await head(bob, 'b/app', sha256(secret))).status).toBe(404);
  });
});
