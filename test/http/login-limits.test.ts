// Password checks cost the same on every failure path (counted, not timed: each refused login
// runs exactly one scrypt verification, whatever the name), and guessing is limited per client
// address and per (name, address) with exponential backoff, without locking a user out from
// another address. Real server; clients bind 127.0.0.x source addresses to be different clients.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/crypto/passwords.js';
import { LoginLimits } from '../../src/http/auth/login-limits.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const CHEAP = { logN: 10, r: 8, p: 1 };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('login limits (pure)', () => {
  const options = { perAddress: 4, perNameAndAddress: 2, baseDelay: 1000, maxDelay: 8000, forgetAfter: 60_000 };

  it('let the allowance through, then double the wait with each failure up to the cap', () => {
    let now = 1_000_000;
    const limits = new LoginLimits(options, () => now);
    const waits: number[] = [];
    for (let i = 0; i < 7; i++) {
      expect(limits.waitMs('10.0.0.1', 'alice')).toBe(0);
      limits.failed('10.0.0.1', 'alice');
      waits.push(limits.waitMs('10.0.0.1', 'alice'));
      now += waits.at(-1)!;
    }
    expect(waits).toEqual([0, 1000, 2000, 4000, 8000, 8000, 8000]);
  });

  it('limit a name only together with an address, and an address across names', () => {
    let now = 0;
    const limits = new LoginLimits(options, () => now);
    limits.failed('10.0.0.1', 'alice');
    limits.failed('10.0.0.1', 'alice');
    expect(limits.waitMs('10.0.0.1', 'alice')).toBe(1000);
    expect(limits.waitMs('10.0.0.2', 'alice')).toBe(0); // the real alice elsewhere
    expect(limits.waitMs('10.0.0.1', 'bob')).toBe(0);
    limits.failed('10.0.0.1', 'bob');
    limits.failed('10.0.0.1', 'carol');
    expect(limits.waitMs('10.0.0.1', 'dave')).toBe(1000); // the address's budget is spent
    expect(limits.waitMs('10.0.0.2', 'dave')).toBe(0);
    now += 60_001; // forgotten
    expect(limits.waitMs('10.0.0.1', 'alice')).toBe(0);
    limits.failed('10.0.0.1', 'alice');
    expect(limits.waitMs('10.0.0.1', 'alice')).toBe(0);
  });

  it('hold bounded memory under a flood of names and addresses', () => {
    const limits = new LoginLimits(options);
    for (let i = 0; i < 60_000; i++) limits.failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, `user-${i}`);
    expect(limits.size).toBeLessThanOrEqual(100_000);
  });

  it('hold bounded memory whatever the length of the names guessed (a token POST carries a 64 KiB one)', () => {
    const limits = new LoginLimits(options);
    const long = 'x'.repeat(60_000);
    for (let i = 0; i < 500; i++) limits.failed(`10.1.${(i >> 8) & 255}.${i & 255}`, `${long}${i}`);
    // 500 addresses each held once, 500 pairs: a fixed size each, not the 60 kB name.
    expect(limits.keyBytes).toBeLessThanOrEqual(1000 * 100);
  });
});

/** A request from a chosen loopback source address (another client, as far as the server knows). */
function request(base: string, from: string, method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  const u = new URL(base);
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path, headers, localAddress: from, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('admin tokens on the real server', () => {
  let registry: TestRegistry;
  const TOKEN = 'limits-admin-token-0123456789';
  beforeAll(async () => {
    registry = await startTestRegistry({ env: { DRREG_ADMIN_TOKEN: TOKEN, DRREG_LOGINLIMITS_PERADDRESS: '3' } });
  });
  afterAll(() => registry?.stop());

  it('count wrong bearer tokens like wrong passwords, per address', async () => {
    const storage = (from: string, token: string) => request(registry.url, from, 'GET', '/admin/v1/storage', { Authorization: `Bearer ${token}` });
    for (let i = 0; i < 3; i++) expect((await storage('127.0.0.51', `guess-${i}-0123456789`)).status).toBe(401);
    const refused = await storage('127.0.0.51', TOKEN);
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect((await storage('127.0.0.52', TOKEN)).status).toBe(200);
    // No credentials at all is no guess: not counted, not limited.
    for (let i = 0; i < 5; i++) expect((await request(registry.url, '127.0.0.53', 'GET', '/admin/v1/storage')).status).toBe(401);
    expect((await storage('127.0.0.53', TOKEN)).status).toBe(200);
  });
});

describe('a parallel flood of logins from one address', () => {
  let registry: TestRegistry;
  const checks = async () => (await registry.metrics.passwordChecks.get()).values[0]?.value ?? 0;
  beforeAll(async () => {
    registry = await startTestRegistry({
      env: {
        DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
        DRREG_AUTH_USERS: JSON.stringify([{ name: 'bob', password: await hashPassword('bob-pw') }]), // the default cost
        DRREG_LOGINLIMITS_PERADDRESS: '6',
      },
    });
  });
  afterAll(() => registry?.stop());

  it('let one address have only a few checks at once, so a parallel flood does not starve other clients', async () => {
    const flooder = '127.0.0.41';
    const before = await checks();
    // Real-cost hashes (tens of ms each): the shared queue of checks fills if one address may fill it.
    const flood = Array.from({ length: 60 }, (_, i) =>
      request(registry.url, flooder, 'GET', '/auth/token?service=dr-registry', { Authorization: basic(`flood-${i}`, 'x') }),
    );
    // While the flood is in flight, a user elsewhere logs in.
    const user = await request(registry.url, '127.0.0.42', 'GET', '/auth/token?service=dr-registry', { Authorization: basic('bob', 'bob-pw') });
    const statuses = (await Promise.all(flood)).map((r) => r.status);
    expect(user.status).toBe(200);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
    // At most the per-address allowance (6) plus what was in flight (8) reached scrypt.
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(14);
    expect((await checks()) - before).toBeLessThanOrEqual(15); // and bob's one
    // A user whose password was just verified is not limited by checks at once: 20 parallel
    // token requests with remembered credentials all succeed.
    const parallel = await Promise.all(
      Array.from({ length: 20 }, () => request(registry.url, '127.0.0.42', 'GET', '/auth/token?service=dr-registry', { Authorization: basic('bob', 'bob-pw') })),
    );
    expect(parallel.map((r) => r.status)).toEqual(Array(20).fill(200));
  });

});

describe('logins on the real server', () => {
  let registry: TestRegistry;
  const checks = async () => (await registry.metrics.passwordChecks.get()).values[0]?.value ?? 0;

  beforeAll(async () => {
    const users = [
      { name: 'alice', password: await hashPassword('alice-pw', CHEAP) },
      { name: 'bob', password: await hashPassword('bob-pw', CHEAP) },
      { name: 'carol', password: await hashPassword('carol-pw', CHEAP) },
    ];
    registry = await startTestRegistry({
      env: {
        DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
        DRREG_AUTH_USERS: JSON.stringify(users),
        DRREG_AUTH_ADMINS: '["alice"]',
        DRREG_LOGINLIMITS_PERADDRESS: '6',
        DRREG_LOGINLIMITS_PERNAMEANDADDRESS: '3',
        DRREG_LOGINLIMITS_BASEDELAY: '1s',
      },
    });
  });
  afterAll(() => registry?.stop());

  it('run exactly one password check on every failure path, admin or not, known or not', async () => {
    const form = (u: string, p: string) => new URLSearchParams({ grant_type: 'password', username: u, password: p, service: 'dr-registry' }).toString();
    let from = '';
    const attempts: Array<[string, () => ReturnType<typeof request>]> = [
      ['admin API, unknown user', () => request(registry.url, from, 'GET', '/admin/v1/storage', { Authorization: basic('mallory', 'x') })],
      ['admin API, user who is no admin, wrong password', () => request(registry.url, from, 'GET', '/admin/v1/storage', { Authorization: basic('bob', 'x') })],
      ['admin API, user who is no admin, right password', () => request(registry.url, from, 'GET', '/admin/v1/storage', { Authorization: basic('carol', 'carol-pw') })],
      ['admin API, admin with a wrong password', () => request(registry.url, from, 'GET', '/admin/v1/storage', { Authorization: basic('alice', 'x') })],
      ['token GET, unknown user', () => request(registry.url, from, 'GET', '/auth/token?service=dr-registry', { Authorization: basic('mallory', 'x') })],
      ['token GET, wrong password', () => request(registry.url, from, 'GET', '/auth/token?service=dr-registry', { Authorization: basic('bob', 'x') })],
      ['token GET, "anonymous"', () => request(registry.url, from, 'GET', '/auth/token?service=dr-registry', { Authorization: basic('anonymous', 'x') })],
      ['token POST, unknown user', () => request(registry.url, from, 'POST', '/auth/token', { 'Content-Type': 'application/x-www-form-urlencoded' }, form('mallory', 'x'))],
      ['token POST, wrong password', () => request(registry.url, from, 'POST', '/auth/token', { 'Content-Type': 'application/x-www-form-urlencoded' }, form('carol', 'x'))],
    ];
    for (const [i, [what, attempt]] of attempts.entries()) {
      from = `127.0.0.${40 + i}`; // a fresh client each time: the limits are tested below
      const before = await checks();
      const r = await attempt();
      expect(r.status, what).toBe(401);
      expect((await checks()) - before, what).toBe(1);
    }
  });

  it('turn a guesser away with 429 and Retry-After, doubling, while the user logs in from elsewhere', async () => {
    const attacker = '127.0.0.21';
    const user = '127.0.0.22';
    const guess = (from: string, name: string, password: string) => request(registry.url, from, 'GET', '/auth/token?service=dr-registry', { Authorization: basic(name, password) });
    for (let i = 0; i < 3; i++) expect((await guess(attacker, 'alice', `guess-${i}`)).status).toBe(401);
    const before = await checks();
    const refused = await guess(attacker, 'alice', 'alice-pw'); // even the right password: the pair must wait
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(JSON.parse(refused.body).errors[0].code).toBe('TOOMANYREQUESTS');
    expect(await checks()).toBe(before); // turned away before any scrypt work
    // The admin API's Basic auth shares the limits.
    expect((await request(registry.url, attacker, 'GET', '/admin/v1/storage', { Authorization: basic('alice', 'x') })).status).toBe(429);
    // alice, from her own address, is not locked out.
    expect((await guess(user, 'alice', 'alice-pw')).status).toBe(200);
    expect((await request(registry.url, user, 'GET', '/admin/v1/storage', { Authorization: basic('alice', 'alice-pw') })).status).toBe(200);
    // Once the wait is over the next failure waits twice as long (polled: 429s cost nothing).
    let next = await guess(attacker, 'alice', 'guess-again');
    for (let i = 0; next.status === 429 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50));
      next = await guess(attacker, 'alice', 'guess-again');
    }
    expect(next.status).toBe(401);
    const doubled = await guess(attacker, 'alice', 'guess-again');
    expect(doubled.status).toBe(429);
    expect(doubled.headers['retry-after']).toBe('2');
  });

  it('turn a guesser away even while the user is signed in: a remembered password is no way past the wait', async () => {
    const guesser = '127.0.0.51';
    const guess = (from: string, password: string) => request(registry.url, from, 'GET', '/auth/token?service=dr-registry', { Authorization: basic('carol', password) });
    expect((await guess('127.0.0.52', 'carol-pw')).status).toBe(200); // carol signs in: her password is remembered
    for (let i = 0; i < 3; i++) expect((await guess(guesser, `guess-${i}`)).status).toBe(401);
    expect((await guess(guesser, 'guess-3')).status).toBe(429);
    // Otherwise every guess while barred would be a free check (a hash lookup) answered 429 when
    // wrong and 200 when right: guessing at full speed, limits and scrypt both bypassed.
    expect((await guess(guesser, 'carol-pw')).status).toBe(429);
    expect((await request(registry.url, guesser, 'GET', '/admin/v1/storage', { Authorization: basic('carol', 'carol-pw') })).status).toBe(429);
    expect((await guess('127.0.0.52', 'carol-pw')).status).toBe(200); // carol herself is unaffected
  });

  it('limit one address across names, leaving other addresses alone', async () => {
    const sprayer = '127.0.0.31';
    const names = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6'];
    for (const name of names) expect((await request(registry.url, sprayer, 'GET', '/auth/token?service=dr-registry', { Authorization: basic(name, 'x') })).status).toBe(401);
    const blocked = await request(registry.url, sprayer, 'GET', '/auth/token?service=dr-registry', { Authorization: basic('bob', 'bob-pw') });
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await request(registry.url, '127.0.0.32', 'GET', '/auth/token?service=dr-registry', { Authorization: basic('bob', 'bob-pw') })).status).toBe(200);
  });
});
