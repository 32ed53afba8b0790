// The registry client against the real registry with token auth: the token dance with
// credentials from docker's config.json or --creds, a clear error without them or with a user who
// may only pull; references parsed as docker parses them.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/connect.js';
import { dockerCredentials } from '../../src/client/credentials.js';
import { isLoopback, parseReference } from '../../src/client/reference.js';
import { hashPassword } from '../../src/crypto/passwords.js';
import { pullVolume } from '../../src/volumes/pull.js';
import { pushVolume } from '../../src/volumes/push.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

describe('references', () => {
  it('parses as docker does', () => {
    expect(parseReference('127.0.0.1:5000/a/b:t')).toEqual({ registry: '127.0.0.1:5000', repository: 'a/b', tag: 't', digest: undefined });
    expect(parseReference('localhost/x')).toMatchObject({ registry: 'localhost', repository: 'x', tag: 'latest' });
    expect(parseReference('ubuntu')).toMatchObject({ registry: 'docker.io', repository: 'library/ubuntu', tag: 'latest' });
    const d = `sha256:${'a'.repeat(64)}`;
    expect(parseReference(`r.example.com/a@${d}`)).toMatchObject({ registry: 'r.example.com', repository: 'a', tag: undefined, digest: d });
    expect(() => parseReference('r.example.com/A:t')).toThrow(/invalid repository/);
    expect(() => parseReference('r.example.com/a@sha256:zz')).toThrow(/invalid digest/);
    expect(isLoopback('127.0.0.1:5000')).toBe(true);
    expect(isLoopback('localhost:80')).toBe(true);
    expect(isLoopback('[::1]:5000')).toBe(true);
    expect(isLoopback('registry.example.com')).toBe(false);
  });
});

describe('client with token auth', () => {
  const alice = `alice-${randomBytes(6).toString('hex')}`;
  const bob = `bob-${randomBytes(6).toString('hex')}`;
  let registry: TestRegistry;
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-client-'));
    const users = [
      { name: 'alice', password: await hashPassword(alice, { logN: 12, r: 8, p: 1 }) },
      { name: 'bob', password: await hashPassword(bob, { logN: 12, r: 8, p: 1 }) },
    ];
    registry = await startTestRegistry({
      env: {
        DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
        DRREG_AUTH_USERS: JSON.stringify(users),
        DRREG_AUTH_ACCESS: JSON.stringify([
          { repositories: 'vols/*', users: ['alice'], actions: ['pull', 'push'] },
          { repositories: 'vols/*', users: ['bob'], actions: ['pull'] },
        ]),
      },
    });
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('pushes with docker config credentials, pulls with --creds, refuses without rights', async () => {
    const src = path.join(work, 'src');
    mkdirSync(src);
    writeFileSync(path.join(src, 'a.txt'), 'data '.repeat(1000));
    const config = path.join(work, 'docker');
    mkdirSync(config);
    writeFileSync(path.join(config, 'config.json'), JSON.stringify({ auths: { [registry.hostPort]: { auth: Buffer.from(`alice:${alice}`).toString('base64') } } }));
    const creds = dockerCredentials(registry.hostPort, { configDir: config });
    expect(creds).toEqual({ username: 'alice', password: alice });
    const ref = parseReference(`${registry.hostPort}/vols/a:v1`);
    const pusher = connect(ref, { creds: `alice:${alice}`, push: true });
    const pushed = await pushVolume({ client: pusher, repo: ref.repository, tag: 'v1', dir: src });
    const reader = connect(ref, { creds: `bob:${bob}` });
    await pullVolume({ client: reader, repo: ref.repository, reference: 'v1', dest: path.join(work, 'out') });
    // bob may pull but not push; nobody anonymous gets in.
    await expect(pushVolume({ client: connect(ref, { creds: `bob:${bob}`, push: true }), repo: ref.repository, tag: 'v2', dir: src, useParent: false })).rejects.toThrow(
      /401|403|DENIED|UNAUTHORIZED/,
    );
    await expect(pullVolume({ client: connect(ref, {}), repo: ref.repository, reference: pushed.digest, dest: path.join(work, 'out2') })).rejects.toThrow(
      /refused|credentials/,
    );
    const warnings: string[] = [];
    writeFileSync(path.join(config, 'config.json'), JSON.stringify({ credsStore: 'desktop' }));
    expect(dockerCredentials(registry.hostPort, { configDir: config, warn: (m) => warnings.push(m) })).toBeUndefined();
    expect(warnings.join()).toMatch(/credential helper "desktop".*--creds/);
  });
});
