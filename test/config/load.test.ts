import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, envName, loadConfig, settings } from '../../src/config/index.js';
import { hashPassword } from '../../src/crypto/passwords.js';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function yamlFile(text: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'drreg-config-'));
  dirs.push(dir);
  const file = path.join(dir, 'config.yml');
  await writeFile(file, text);
  return file;
}

describe('configuration', () => {
  it('defaults to the embedded registry: filesystem in ./data on 0.0.0.0:5000', () => {
    const config = loadConfig({ env: {} });
    expect(config.listen).toBe('0.0.0.0:5000');
    expect(config.storage.driver).toBe('filesystem');
    expect(config.storage.filesystem.root).toBe('./data');
    expect(config.manifests.maxSize).toBe(4 * 1024 * 1024);
    expect(config.uploads.maxAge).toBe(24 * 3600 * 1000);
  });

  it('names environment variables DRREG_ + the upper-cased path joined with _', () => {
    expect(envName(['listen'])).toBe('DRREG_LISTEN');
    expect(envName(['storage', 'filesystem', 'root'])).toBe('DRREG_STORAGE_FILESYSTEM_ROOT');
    const names = settings().map((s) => s.env);
    expect(names).toContain('DRREG_STORAGE_S3_SECRETKEY');
    expect(new Set(names).size).toBe(names.length); // no two settings share a variable
  });

  it('reads YAML, then lets the environment override it, with typed values', async () => {
    const file = await yamlFile('listen: 127.0.0.1:6000\nstorage:\n  filesystem:\n    root: /srv/a\n    fsync: true\n');
    const config = loadConfig({
      file,
      env: { DRREG_STORAGE_FILESYSTEM_ROOT: '/srv/b', DRREG_STORAGE_FILESYSTEM_FSYNC: 'false', DRREG_UPLOADS_MAXAGE: '2h' },
    });
    expect(config.listen).toBe('127.0.0.1:6000');
    expect(config.storage.filesystem.root).toBe('/srv/b');
    expect(config.storage.filesystem.fsync).toBe(false);
    expect(config.uploads.maxAge).toBe(2 * 3600 * 1000);
  });

  it('accepts sizes with units', () => {
    const config = loadConfig({ env: { DRREG_STORAGE_S3_PARTSIZE: '64MiB', DRREG_MANIFESTS_MAXSIZE: '1MB' } });
    expect(config.storage.s3.partSize).toBe(64 * 1024 * 1024);
    expect(config.manifests.maxSize).toBe(1_000_000);
  });

  it.each([
    [{ DRREG_LISTEN: 'nowhere' }, /listen \(from DRREG_LISTEN\): expected host:port/],
    [{ DRREG_STORAGE_DRIVER: 'ftp' }, /storage\.driver \(from DRREG_STORAGE_DRIVER\)/],
    [{ DRREG_UPLOADS_MAXAGE: '30' }, /uploads\.maxAge \(from DRREG_UPLOADS_MAXAGE\): expected a duration/],
    [{ DRREG_STORAGE_S3_PARTSIZE: '1MiB' }, /storage\.s3\.partSize .*5MiB/],
    [{ DRREG_STORAGE_S3_CONCURRENCY: 'many' }, /storage\.s3\.concurrency/],
    [{ DRREG_STORAGE_FILESYSTEM_ROOTT: '/x' }, /unknown environment variable DRREG_STORAGE_FILESYSTEM_ROOTT/],
    [{ DRREG_STORAGE_S3_REDIRECT: 'true', DRREG_ENCRYPTION_KEYRING: '/k.yml' }, /storage\.s3\.redirect \(from DRREG_STORAGE_S3_REDIRECT\): cannot be true while encryption/],
    [{ DRREG_RETENTION_POLICIES: '[{"repositories":"a/*","keepLast":-1}]' }, /retention\.policies\.0\.keepLast/],
    [{ DRREG_ADMIN_TOKEN: 'short' }, /admin\.token \(from DRREG_ADMIN_TOKEN\): must be empty/],
  ])('refuses %o with a message naming the key', (env, message) => {
    expect(() => loadConfig({ env })).toThrow(ConfigError);
    expect(() => loadConfig({ env })).toThrow(message);
  });

  it('names unknown and invalid keys of the YAML file', async () => {
    const file = await yamlFile('storage:\n  filesytem:\n    root: /x\nmanifests:\n  maxSize: lots\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/storage\.filesytem: Unrecognized key/);
    expect(() => loadConfig({ file, env: {} })).toThrow(/manifests\.maxSize: expected a size/);
  });

  it('reports an unreadable or non-YAML file clearly', async () => {
    expect(() => loadConfig({ file: '/nonexistent/dr.yml', env: {} })).toThrow(/cannot read \/nonexistent\/dr\.yml/);
    const file = await yamlFile('listen: [unclosed\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/is not valid YAML/);
  });
  it('checks auth settings at start-up and names the key', async () => {
    const hash = await hashPassword('pw', { logN: 10, r: 8, p: 1 });
    const secret = 'x'.repeat(32);
    const fails = (env: Record<string, string>, pattern: RegExp) => expect(() => loadConfig({ env })).toThrow(pattern);
    fails({ DRREG_AUTH_SECRET: 'short' }, /auth\.secret \(from DRREG_AUTH_SECRET\): must be empty \(auth off\) or at least 32 characters/);
    fails({ DRREG_AUTH_SECRET: secret, DRREG_AUTH_USERS: '[{"name":"a","password":"plain-text"}]' }, /auth\.users\.0\.password.*hash-password/);
    fails({ DRREG_AUTH_SECRET: secret, DRREG_AUTH_USERS: JSON.stringify([{ name: 'anonymous', password: hash }]) }, /auth\.users\.0\.name.*reserved/);
    fails({ DRREG_AUTH_SECRET: secret, DRREG_AUTH_USERS: JSON.stringify([{ name: 'a:b', password: hash }]) }, /auth\.users\.0\.name/);
    fails(
      { DRREG_AUTH_SECRET: secret, DRREG_AUTH_USERS: JSON.stringify([{ name: 'a', password: hash }, { name: 'a', password: hash }]) },
      /auth\.users\.1\.name: user a is listed twice/,
    );
    fails(
      { DRREG_AUTH_SECRET: secret, DRREG_AUTH_ACCESS: '[{"repositories":"*","users":["ghost"],"actions":["pull"]}]' },
      /auth\.access\.0\.users\.0: no user ghost in auth\.users/,
    );
    fails({ DRREG_AUTH_SECRET: secret, DRREG_AUTH_ACCESS: '[{"repositories":"*","users":["*"],"actions":["write"]}]' }, /auth\.access\.0\.actions\.0/);
    fails({ DRREG_AUTH_SECRET: secret, DRREG_AUTH_TOKENTTL: '30s' }, /auth\.tokenTtl.*between 60s and 1h/);
    fails({ DRREG_AUTH_SECRET: secret, DRREG_AUTH_SERVICE: 'a"b' }, /auth\.service/);
    fails({ DRREG_AUTH_SECRET: secret, DRREG_AUTH_REALM: 'https://h/auth/token"x' }, /auth\.realm/);
    fails({ DRREG_AUTH_SECRET: secret, DRREG_AUTH_ADMINS: '["root"]' }, /auth\.admins\.0: no user root in auth\.users/);
    // Users without a secret would silently leave the registry open: refused.
    fails({ DRREG_AUTH_USERS: JSON.stringify([{ name: 'a', password: hash }]) }, /auth\.secret: must be set/);

    const ok = loadConfig({
      env: {
        DRREG_AUTH_SECRET: secret,
        DRREG_AUTH_USERS: JSON.stringify([{ name: 'alice', password: hash }]),
        DRREG_AUTH_ACCESS: '[{"repositories":"moodle/*","users":["alice","anonymous"],"actions":["pull"]}]',
        DRREG_AUTH_TOKENTTL: '2m',
      },
    });
    expect(ok.auth.tokenTtl).toBe(120_000);
    expect(ok.auth.access[0]!.users).toEqual(['alice', 'anonymous']);
  });
});
