// Append-only credentials with the real client: the on-prem host logs in with `docker login` and
// pushes `latest` every day (each push a new recovery point, the old one kept), but cannot delete
// anything nor open the admin API, even though an access rule for every user grants delete.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashPassword } from '../../src/crypto/passwords.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { dockerAs, freshSkopeo } from './clients.js';
import { buildImage, writeLayout } from './images.js';

const PASSWORD = 'ci-' + randomBytes(6).toString('hex');

describe('append-only user with docker login', () => {
  let registry: TestRegistry;
  let work: string;
  const dockerHost = inject('dockerHost');

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-e2e-append-'));
    registry = await startTestRegistry({
      env: {
        DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
        DRREG_AUTH_USERS: JSON.stringify([{ name: 'ci', password: await hashPassword(PASSWORD, { logN: 12, r: 8, p: 1 }), appendOnly: true }]),
        // A broad rule: delete is granted to every user, and still not to an append-only one.
        DRREG_AUTH_ACCESS: JSON.stringify([{ repositories: 'backup/*', users: ['*'], actions: ['pull', 'push', 'delete'] }]),
        DRREG_RETENTION_LOCK: '0', // the refusals below come from the right alone, not from a lock
        DRREG_ADMIN_TOKEN: randomBytes(24).toString('hex'), // the admin API is open, to someone else
      },
    });
    for (const day of ['d1', 'd2']) {
      await writeLayout(path.join(work, day), 'v1', { image: buildImage([{ seed: `append-only-${day}`, size: 256 * 1024 }]) });
    }
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('pushes latest on two days (two points), cannot delete either, cannot open the admin API', async () => {
    const docker = dockerAs(dockerHost, await mkdtemp(path.join(work, 'docker-')));
    expect((await docker(['login', registry.hostPort, '--username', 'ci', '--password-stdin'], PASSWORD)).stdout).toMatch(/Login Succeeded/);
    const ref = `${registry.hostPort}/backup/host:latest`;
    const digests: string[] = [];
    for (const day of ['d1', 'd2']) {
      const skopeo = await freshSkopeo(work);
      await skopeo(['copy', '--dest-daemon-host', dockerHost, `oci:${path.join(work, day)}:v1`, `docker-daemon:${ref}`]);
      const pushed = /digest: (sha256:[0-9a-f]{64})/.exec((await docker(['push', ref])).stdout)?.[1];
      expect(pushed).toBeDefined();
      digests.push(pushed!);
      await docker(['rmi', ref]);
    }
    expect(digests[0]).not.toBe(digests[1]);
    const points = await registry.registry.recoveryPoints.list('backup/host');
    expect(points.map((p) => p.digest)).toEqual(digests); // the first push was not overwritten

    // The day-1 point still pulls with docker, by digest.
    await docker(['pull', `${registry.hostPort}/backup/host@${digests[0]}`]);
    await docker(['rmi', `${registry.hostPort}/backup/host@${digests[0]}`]);

    // Deleting: the token endpoint grants no delete, and the request is refused with DENIED.
    const basic = `Basic ${Buffer.from(`ci:${PASSWORD}`).toString('base64')}`;
    const tokenRes = await fetch(`${registry.url}/auth/token?service=dr-registry&scope=repository:backup/host:pull,push,delete`, { headers: { Authorization: basic } });
    const token = ((await tokenRes.json()) as { token: string }).token;
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { access: Array<{ actions: string[] }> };
    expect(claims.access[0]!.actions).toEqual(['pull', 'push']);
    for (const reference of [digests[0]!, digests[1]!, 'latest']) {
      const res = await fetch(`${registry.url}/v2/backup/host/manifests/${reference}`, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { errors: Array<{ code: string; message: string }> }).errors[0]).toMatchObject({
        code: 'DENIED',
        message: 'user ci is append-only: it may push new recovery points but never delete',
      });
    }
    // Nor the admin API (re-tag, unpin, prune, policies): not an admin, whatever it asks for.
    const adminToken = ((await (await fetch(`${registry.url}/auth/token?service=dr-registry&scope=registry:admin:*`, { headers: { Authorization: basic } })).json()) as { token: string }).token;
    for (const authorization of [basic, `Bearer ${adminToken}`]) {
      const res = await fetch(`${registry.url}/admin/v1/recovery-points/restore`, {
        method: 'POST',
        headers: { Authorization: authorization, 'Content-Type': 'application/json' },
        body: JSON.stringify({ repository: 'backup/host', tag: 'latest', digest: digests[0] }),
      });
      expect(res.status).toBe(401);
    }
    expect((await registry.registry.recoveryPoints.list('backup/host')).map((p) => p.digest)).toEqual(digests);
  }, 300_000);
});
