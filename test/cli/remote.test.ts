// The recovery site's commands against a running registry, as child processes: points list, pin,
// unpin, restore (then a pull by tag gets the restored point); credentials by token and by admin
// user; and each failure (no URL, unreachable, refused, no such repository or point, no admin API)
// as one line with its own exit code. Also `config check`.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/command.js';
import { hashPassword } from '../../src/crypto/passwords.js';
import { freePort } from '../helpers/ports.js';
import { runCli } from '../helpers/cli.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { OCI_MANIFEST } from '../http/client.js';
import { pushPoint, type PushedImage } from '../retention/helpers.js';

const TOKEN = 'cli-admin-token-0123456789';

describe('dr-registry points against a running registry', () => {
  let registry: TestRegistry;
  let older: PushedImage;
  let newer: PushedImage;
  let env: Record<string, string>;

  beforeAll(async () => {
    registry = await startTestRegistry({ env: { DRREG_ADMIN_TOKEN: TOKEN } });
    const base = Buffer.from('base layer of the cli test');
    older = await pushPoint(registry.url, 'dr/app', 'latest', base);
    newer = await pushPoint(registry.url, 'dr/app', 'latest', base);
    env = { DRREG_URL: registry.url, DRREG_ADMIN_TOKEN: TOKEN };
  });
  afterAll(() => registry?.stop());

  it('lists the points as an aligned table and as JSON', async () => {
    const listed = await runCli(['points', 'list', 'dr/app'], env);
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TAG\s+DIGEST\s+PUSHED\s+STATE$/);
    expect(lines[1]).toMatch(new RegExp(`^latest  ${older.digest}  \\S+Z  kept$`));
    expect(lines[2]).toMatch(new RegExp(`^latest  ${newer.digest}  \\S+Z  current$`));
    // Aligned: every row's digest starts in the header's DIGEST column.
    expect(lines[1]!.indexOf('sha256:')).toBe(lines[0]!.indexOf('DIGEST'));
    expect(lines.at(-1)).toBe('2 point(s), 0 pruned and still restorable');
    const json = JSON.parse((await runCli(['points', 'list', 'dr/app', '--json'], env)).stdout) as { points: Array<{ digest: string; current: boolean }> };
    expect(json.points.map((p) => [p.digest, p.current])).toEqual([
      [older.digest, false],
      [newer.digest, true],
    ]);
  }, 60_000);

  it('pins and unpins a point', async () => {
    const pinned = await runCli(['points', 'pin', 'dr/app', older.digest], env);
    expect(pinned).toMatchObject({ code: 0, stdout: `pinned dr/app@${older.digest}\n` });
    expect((await runCli(['points', 'list', 'dr/app'], env)).stdout).toMatch(new RegExp(`${older.digest}  \\S+  pinned$`, 'm'));
    const unpinned = await runCli(['points', 'unpin', 'dr/app', older.digest, '--json'], env);
    expect(unpinned.code).toBe(0);
    expect(JSON.parse(unpinned.stdout)).toEqual({ repository: 'dr/app', digest: older.digest, pinned: false });
    expect((await runCli(['points', 'list', 'dr/app'], env)).stdout).toMatch(new RegExp(`${older.digest}  \\S+  kept$`, 'm'));
  }, 90_000);

  it('restores a point: a pull of the tag then gets it', async () => {
    const restored = await runCli(['points', 'restore', 'dr/app', older.digest, '--tag', 'latest'], env);
    expect(restored.code).toBe(0);
    expect(restored.stdout).toBe(`restored dr/app:latest to ${older.digest}; pull ${registry.hostPort}/dr/app:latest\n`);
    const pulled = await fetch(`${registry.url}/v2/dr/app/manifests/latest`, { headers: { Accept: OCI_MANIFEST } });
    expect(pulled.headers.get('docker-content-digest')).toBe(older.digest);
    expect(Buffer.from(await pulled.arrayBuffer()).equals(older.manifest)).toBe(true);
  });

  it('says what went wrong in one line, with an exit code per kind', async () => {
    const oneLine = (stderr: string) => expect(stderr.trimEnd().split('\n')).toHaveLength(1);

    const closed = `http://127.0.0.1:${await freePort()}`;
    // Independent runs, in parallel: each is a child process.
    const [noUrl, unreachable, refused, anonymous, noRepo, noPoint, badDigest, noTag, badSub] = await Promise.all([
      runCli(['points', 'list', 'dr/app'], { DRREG_ADMIN_TOKEN: TOKEN }),
      runCli(['status', '--url', closed], env),
      runCli(['points', 'list', 'dr/app', '--token', 'wrong-token-but-long-enough'], env),
      runCli(['status'], { DRREG_URL: registry.url }),
      runCli(['points', 'list', 'no/such'], env),
      runCli(['points', 'pin', 'dr/app', `sha256:${'0'.repeat(64)}`], env),
      runCli(['points', 'pin', 'dr/app', 'nope'], env),
      runCli(['points', 'restore', 'dr/app', older.digest], env),
      runCli(['points', 'frob'], env),
    ]);
    expect(noUrl.code).toBe(EXIT.usage);
    expect(noUrl.stderr).toBe('dr-registry points: no registry given: use --url URL or set DRREG_URL\n');
    expect(unreachable.code).toBe(EXIT.unreachable);
    expect(unreachable.stderr).toBe(`dr-registry status: cannot reach the registry at ${closed}: ECONNREFUSED\n`);
    expect(refused.code).toBe(EXIT.unauthorized);
    expect(refused.stderr).toMatch(/^dr-registry points: the registry at http:\/\/127\.0\.0\.1:\d+ refused the credentials: UNAUTHORIZED: admin token required\n$/);
    expect(anonymous.code).toBe(EXIT.unauthorized);
    expect(anonymous.stderr).toMatch(/no credentials given/);
    expect(noRepo.code).toBe(EXIT.notFound);
    expect(noRepo.stderr).toBe('dr-registry points: no repository no/such in the registry\n');
    expect(noPoint.code).toBe(EXIT.notFound);
    expect(noPoint.stderr).toBe(`dr-registry points: no recovery point sha256:${'0'.repeat(64)} in that repository\n`);
    expect(badDigest.code).toBe(EXIT.usage);
    oneLine(badDigest.stderr);
    expect(noTag).toMatchObject({ code: EXIT.usage, stderr: 'dr-registry points: points restore needs --tag TAG\n' });
    expect(badSub.code).toBe(EXIT.usage);
    oneLine(badSub.stderr);
    for (const r of [unreachable, refused, noRepo, noPoint]) {
      oneLine(r.stderr);
      expect(r.stderr).not.toMatch(/start-up failed|at .*\.ts:\d+/);
    }
  }, 120_000);
});

describe('CLI credentials and registries without an admin API', () => {
  let withUsers: TestRegistry;
  let without: TestRegistry;
  beforeAll(async () => {
    withUsers = await startTestRegistry({
      env: {
        DRREG_AUTH_SECRET: 'a-secret-of-at-least-32-characters-0123',
        DRREG_AUTH_USERS: JSON.stringify([{ name: 'ops', password: await hashPassword('night shift') }]),
        DRREG_AUTH_ADMINS: JSON.stringify(['ops']),
      },
    });
    without = await startTestRegistry();
  });
  afterAll(async () => {
    await withUsers?.stop();
    await without?.stop();
  });

  it('logs in as an admin user with the password from DRREG_PASSWORD', async () => {
    const ok = await runCli(['status', '--user', 'ops', '--url', withUsers.url], { DRREG_PASSWORD: 'night shift' });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^0 of 0 watched system\(s\) out of RPO$/m);
    const wrong = await runCli(['status', '--user', 'ops', '--url', withUsers.url], { DRREG_PASSWORD: 'day shift' });
    expect(wrong.code).toBe(EXIT.unauthorized);
    const noPassword = await runCli(['status', '--user', 'ops', '--url', withUsers.url], {});
    expect(noPassword).toMatchObject({ code: EXIT.usage, stderr: 'dr-registry status: --user needs a password: set DRREG_PASSWORD (no terminal to ask on)\n' });
  }, 90_000);

  it('tells that the admin API is off rather than a bare 404', async () => {
    const off = await runCli(['status', '--url', without.url, '--token', TOKEN], {});
    expect(off.code).toBe(EXIT.notFound);
    expect(off.stderr).toBe(`dr-registry status: the registry at ${without.url} has no admin API at /admin/v1/systems (is admin.token or auth.admins set there?)\n`);
  });
});

describe('dr-registry config check', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'drreg-config-check-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('prints the effective configuration: values as written, defaults in units, secrets masked, sources', async () => {
    const file = path.join(dir, 'config.yml');
    await writeFile(
      file,
      ['retention:', '  grace: 36h', '  policies:', '    - { repositories: "dr/*", keepWithin: 7d }', 'storage:', '  s3:', '    partSize: 32MiB', '    secretKey: very-secret-key'].join('\n'),
    );
    const env = { DRREG_ADMIN_TOKEN: 'admin-token-that-is-secret', DRREG_AUTH_SECRET: 'a-secret-of-at-least-32-characters-0123' };
    const checked = await runCli(['config', 'check', '--config', file], env);
    expect(checked.code).toBe(0);
    const out = checked.stdout;
    expect(out).toMatch(/^# dr-registry configuration: valid$/m);
    expect(out).toContain(`# file: ${file}`);
    expect(out).toMatch(/^#   admin\.token \(DRREG_ADMIN_TOKEN\)$/m);
    expect(out).toMatch(/^ {2}grace: 36h$/m); // as written
    expect(out).toMatch(/keepWithin: 7d/);
    expect(out).toMatch(/^ {4}partSize: 32MiB$/m);
    expect(out).toMatch(/^ {2}sweepDelay: 1m$/m); // a default, in its unit
    expect(out).toMatch(/^ {2}maxAge: 26h$/m); // rpo.maxAge
    expect(out).toMatch(/^ {2}maxSize: 4MiB$/m);
    for (const secret of ['very-secret-key', 'admin-token-that-is-secret', 'a-secret-of-at-least-32-characters-0123']) expect(out).not.toContain(secret);
    expect(out.match(/"\*{8}"/g)).toHaveLength(3);
    const json = JSON.parse((await runCli(['config', 'check', '--config', file, '--json'], env)).stdout) as { config: { retention: { grace: string } } };
    expect(json.config.retention.grace).toBe('36h');
  }, 60_000);

  it('exits 6 naming each bad key', async () => {
    const bad = await runCli(['config', 'check'], { DRREG_GC_GRACE: 'soon', DRREG_RPO_MAXAGE: 'daily' });
    expect(bad.code).toBe(EXIT.config);
    expect(bad.stderr).toMatch(/gc\.grace \(from DRREG_GC_GRACE\): expected a duration/);
    expect(bad.stderr).toMatch(/rpo\.maxAge \(from DRREG_RPO_MAXAGE\): expected a duration/);
  });
});
