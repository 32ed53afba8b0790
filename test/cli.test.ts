// The command line as operators run it: a real child process.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../src/crypto/passwords.js';
import { startTestRegistry } from './helpers/registry.js';

const MAIN = path.resolve(__dirname, '../src/main.ts');
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'drreg-cli-'));
  dirs.push(dir);
  return dir;
}

function run(args: string[], env: Record<string, string>, untilOutput?: RegExp, stdin?: string) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      env: { PATH: process.env.PATH ?? '', DRREG_RETENTION_LOCK: '0', ...env },
    });
    child.stdin.end(stdin ?? '');
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000); // a loaded machine starts node slowly
    let signalled = false;
    child.stdout.on('data', (c) => {
      stdout += c;
      if (!signalled && untilOutput?.test(stdout)) {
        signalled = true; // a second SIGTERM would force-quit, as a double Ctrl-C should
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('dr-registry CLI', { timeout: 120_000 }, () => { // child processes: slow on a loaded machine
  it('refuses to start on a bad setting and names the key and its variable', async () => {
    const result = await run(['serve'], { DRREG_STORAGE_DRIVER: 'tape' });
    expect(result.code).toBe(6); // EXIT.config
    expect(result.stderr).toMatch(/storage\.driver \(from DRREG_STORAGE_DRIVER\)/);
  });

  it('refuses to start when the storage root cannot be written', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    const result = await run(['serve'], { DRREG_LISTEN: '127.0.0.1:0', DRREG_STORAGE_FILESYSTEM_ROOT: `${file}/root` });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`filesystem root ${file}/root is not writable`);
  });

  it('serves, logs JSON, and shuts down cleanly on SIGTERM', async () => {
    const root = await tempDir();
    const result = await run(['serve'], { DRREG_LISTEN: '127.0.0.1:0', DRREG_STORAGE_FILESYSTEM_ROOT: root }, /registry listening/);
    const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; url?: string });
    expect(lines[0]).toMatchObject({ msg: 'registry listening' });
    expect(lines[0]!.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(result.code).toBe(0);
  });

  it('reports storage usage as JSON', async () => {
    const root = await tempDir();
    const registry = await startTestRegistry({ root });
    const blob = Buffer.from('shared layer');
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    for (const repo of ['a', 'b']) await fetch(`${registry.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob });
    await registry.stop();
    const result = await run(['stats', '--json'], { DRREG_STORAGE_FILESYSTEM_ROOT: root });
    expect(result.code).toBe(0);
    const usage = JSON.parse(result.stdout) as { logicalBytes: number; uniqueBytes: number };
    expect(usage.logicalBytes).toBe(2 * blob.length);
    expect(usage.uniqueBytes).toBe(blob.length);
  });

  it('prune --dry-run lists the points a policy drops; prune and gc then free them', async () => {
    const root = await tempDir();
    const registry = await startTestRegistry({ root });
    for (const n of [1, 2, 3]) {
      const config = Buffer.from(`{"n":${n}}`);
      const digest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
      await fetch(`${registry.url}/v2/dr/app/blobs/uploads/?digest=${digest}`, { method: 'POST', body: config });
      const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: config.length }, layers: [] });
      await fetch(`${registry.url}/v2/dr/app/manifests/latest`, { method: 'PUT', body: manifest, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
      await new Promise((r) => setTimeout(r, 3));
    }
    await registry.stop();
    const env = { DRREG_STORAGE_FILESYSTEM_ROOT: root, DRREG_RETENTION_POLICIES: JSON.stringify([{ repositories: 'dr/*', keepLast: 1 }]) };
    const result = await run(['prune', '--dry-run'], env);
    expect(result.code).toBe(0);
    expect(result.stdout.match(/^drop dr\/app:latest sha256:/gm)).toHaveLength(2);
    expect(result.stdout).toMatch(/2 point\(s\) dropped, 1 kept/);
    const pruned = await run(['prune'], { ...env, DRREG_RETENTION_GRACE: '0' });
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toMatch(/2 point\(s\) pruned, 1 kept/);
    // Nothing dropped is left in the history: a second dry run drops nothing.
    expect((await run(['prune', '--dry-run'], env)).stdout).toMatch(/0 point\(s\) dropped, 1 kept/);

    const gcEnv = { ...env, DRREG_RETENTION_GRACE: '0', DRREG_GC_GRACE: '0', DRREG_GC_SWEEPDELAY: '10ms' };
    const dry = await run(['gc', '--dry-run', '--json'], gcEnv);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, manifestsRemoved: 2, blobsSwept: 4 }); // 2 manifests, 2 configs
    const gc = await run(['gc'], gcEnv);
    expect(gc.code).toBe(0);
    expect(gc.stderr).toMatch(/^gc: mark/m);
    expect(gc.stderr).toMatch(/^gc: sweep/m);
    expect(gc.stdout).toMatch(/4 swept/);
    const stats = JSON.parse((await run(['stats', '--json'], env)).stdout) as { repositories: Array<{ manifests: number }> };
    expect(stats.repositories[0]!.manifests).toBe(1);
  }, 120_000); // seven child processes: slow on a loaded machine

  it('lists every setting with its environment variable', async () => {
    const result = await run(['settings'], {});
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^storage\.filesystem\.root\tDRREG_STORAGE_FILESYSTEM_ROOT\t"\.\/data"$/m);
  });

  it('auth hash-password hashes the password on standard input; the hash starts a server that accepts it', async () => {
    const hashed = await run(['auth', 'hash-password'], {}, undefined, 'correct horse\n');
    expect(hashed.code).toBe(0);
    const hash = hashed.stdout.trim();
    expect(hash).toMatch(/^scrypt\$15\$8\$1\$/);
    expect(hash).not.toContain('correct horse');
    expect(await verifyPassword('correct horse', hash)).toBe(true); // the newline is not part of it
    expect(await verifyPassword('correct horse\n', hash)).toBe(false);
    expect((await run(['auth', 'hash-password'], {}, undefined, '')).code).toBe(2);

    const secret = await run(['auth', 'secret'], {});
    expect(secret.stdout.trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const registry = await startTestRegistry({
      env: { DRREG_AUTH_SECRET: secret.stdout.trim(), DRREG_AUTH_USERS: JSON.stringify([{ name: 'ops', password: hash }]) },
    });
    try {
      const login = (password: string) =>
        fetch(`${registry.url}/auth/token?service=dr-registry`, { headers: { Authorization: `Basic ${Buffer.from(`ops:${password}`).toString('base64')}` } });
      expect((await login('correct horse')).status).toBe(200);
      expect((await login('correct horse\n')).status).toBe(401);
    } finally {
      await registry.stop();
    }
  });

  it('prints usage for an unknown command', async () => {
    const result = await run(['frobnicate'], {});
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown command: frobnicate/);
  });
});
