// Token auth with the real clients: `docker login`, then docker push and pull within the user's
// rights and refused outside them; skopeo with --creds the same way. A second user and an
// anonymous client see only what the access rules give them.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashPassword } from '../../src/crypto/passwords.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { dockerAs, freshSkopeo } from './clients.js';
import { buildImage, writeLayout } from './images.js';

const PASSWORDS = { alice: 'alice-' + randomBytes(6).toString('hex'), bob: 'bob-' + randomBytes(6).toString('hex') };

describe('token auth with docker and skopeo', () => {
  let registry: TestRegistry;
  let work: string;
  const dockerHost = inject('dockerHost');
  let layout: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-e2e-auth-'));
    const users = await Promise.all(
      Object.entries(PASSWORDS).map(async ([name, pw]) => ({ name, password: await hashPassword(pw, { logN: 12, r: 8, p: 1 }) })),
    );
    registry = await startTestRegistry({
      env: {
        DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
        DRREG_AUTH_USERS: JSON.stringify(users),
        DRREG_AUTH_ACCESS: JSON.stringify([
          { repositories: 'moodle/*', users: ['alice'], actions: ['pull', 'push'] },
          { repositories: 'moodle/*', users: ['bob'], actions: ['pull'] },
          { repositories: 'public/*', users: ['alice'], actions: ['pull', 'push'] },
          { repositories: 'public/*', users: ['anonymous'], actions: ['pull'] },
        ]),
      },
    });
    layout = path.join(work, 'layout');
    await writeLayout(layout, 'v1', { image: buildImage([{ seed: 'e2e-auth', size: 512 * 1024 }]) });
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  /** A docker client machine: its own credentials, and the test image loaded as `ref`. */
  async function machine(name: string) {
    const docker = dockerAs(dockerHost, await mkdtemp(path.join(work, `docker-${name}-`)));
    const login = (user: keyof typeof PASSWORDS, password = PASSWORDS[user]) =>
      docker(['login', registry.hostPort, '--username', user, '--password-stdin'], password);
    return { docker, login };
  }

  async function load(ref: string) {
    const skopeo = await freshSkopeo(work);
    await skopeo(['copy', '--dest-daemon-host', dockerHost, `oci:${layout}:v1`, `docker-daemon:${ref}`]);
  }

  it('docker login checks the password; the user pushes and pulls where the rules allow', async () => {
    const { docker, login } = await machine('alice');
    await expect(login('alice', 'wrong')).rejects.toThrow(/unauthorized|incorrect username or password/i);
    expect((await login('alice')).stdout).toMatch(/Login Succeeded/);

    const ref = `${registry.hostPort}/moodle/web:c01`;
    await load(ref);
    const pushed = /digest: (sha256:[0-9a-f]{64})/.exec((await docker(['push', ref])).stdout)?.[1];
    expect(pushed).toBeDefined();
    await docker(['rmi', ref]);
    expect(/Digest: (sha256:[0-9a-f]{64})/.exec((await docker(['pull', ref])).stdout)?.[1]).toBe(pushed);
    await docker(['rmi', ref]);
  }, 300_000);

  it('docker: a read-only user pulls but cannot push; a client that did not log in gets nothing private', async () => {
    const alice = await machine('alice-2');
    await alice.login('alice');
    const ref = `${registry.hostPort}/moodle/db:c01`;
    await load(ref);
    await alice.docker(['push', ref]);
    await alice.docker(['rmi', ref]);

    const bob = await machine('bob');
    await bob.login('bob');
    await bob.docker(['pull', ref]);
    await expect(bob.docker(['push', ref])).rejects.toThrow(/denied|unauthorized|insufficient/i);
    await bob.docker(['rmi', ref]);

    const stranger = await machine('stranger');
    await expect(stranger.docker(['pull', ref])).rejects.toThrow(/denied|unauthorized|docker login/i);
  }, 300_000);

  it('skopeo: --dest-creds pushes, anonymous pulls only public repositories', async () => {
    const skopeo = await freshSkopeo(work);
    const aliceCreds = `alice:${PASSWORDS.alice}`;
    await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', aliceCreds, `oci:${layout}:v1`, `docker://${registry.hostPort}/public/base:v1`]);
    await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', aliceCreds, `oci:${layout}:v1`, `docker://${registry.hostPort}/moodle/app:v1`]);

    const anonymous = await freshSkopeo(work);
    const raw = await anonymous(['inspect', '--raw', '--tls-verify=false', `docker://${registry.hostPort}/public/base:v1`]);
    expect(JSON.parse(raw.stdout)).toHaveProperty('schemaVersion', 2);
    await expect(anonymous(['inspect', '--raw', '--tls-verify=false', `docker://${registry.hostPort}/moodle/app:v1`])).rejects.toThrow(/unauthorized|denied|authentication required/i);
    await expect(
      anonymous(['copy', '--dest-tls-verify=false', '--dest-creds', `bob:${PASSWORDS.bob}`, `oci:${layout}:v1`, `docker://${registry.hostPort}/moodle/app:v2`]),
    ).rejects.toThrow(/unauthorized|denied|insufficient/i);
    const asBob = await anonymous(['inspect', '--raw', '--tls-verify=false', '--creds', `bob:${PASSWORDS.bob}`, `docker://${registry.hostPort}/moodle/app:v1`]);
    expect(asBob.stdout).toBe(raw.stdout); // the same image, now readable
  }, 300_000);
});
