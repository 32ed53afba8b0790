// The registry's own TLS with the real clients and a test CA made by openssl.
//
// The docker daemon treats every registry whose address is in 127.0.0.0/8 as insecure: it then
// skips certificate checks and never reads /etc/docker/certs.d (so no CA trust and no client
// certificate). To test what users get, the registry listens on [::1] under a host name that
// resolves to ::1 only: a line this file adds to /etc/hosts and removes afterwards. docker then
// verifies the server against certs.d/HOST:PORT/ca.crt and sends client.cert/client.key from there.
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashPassword } from '../../src/crypto/passwords.js';
import { startTestRegistry, type RequestLine, type TestRegistry } from '../helpers/registry.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';
import { dockerAs, freshSkopeo, type Skopeo } from './clients.js';
import { buildImage, writeLayout } from './images.js';

const HOSTS = '/etc/hosts';
const CERTS_D = '/etc/docker/certs.d';
const HOST = `drreg-tls-${randomBytes(4).toString('hex')}.test`;
const HOSTS_LINE = `::1 ${HOST}`;
const ALICE_PASSWORD = `alice-${randomBytes(6).toString('hex')}`;

let work: string;
let ca: TestCa;
let layout: string;
let madeCertsD = false;
const certDirs: string[] = [];

/** /etc/docker/certs.d/HOST:PORT, created for this test and removed after it. */
async function dockerCertDir(port: number): Promise<string> {
  const dir = path.join(CERTS_D, `${HOST}:${port}`);
  await mkdir(dir, { recursive: true });
  certDirs.push(dir);
  return dir;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'drreg-e2e-tls-'));
  ca = await makeTestCa(work);
  const hosts = await readFile(HOSTS, 'utf8');
  await writeFile(HOSTS, `${hosts.endsWith('\n') || hosts === '' ? hosts : `${hosts}\n`}${HOSTS_LINE}\n`);
  madeCertsD = !(await stat(CERTS_D).then(() => true, () => false));
  // The daemon (Go) re-reads /etc/hosts at most every 5 s: wait until it resolves the new name
  // (a pull from a closed port then fails on the connection, not on the lookup).
  const docker = dockerAs(inject('dockerHost'), await mkdtemp(path.join(work, 'docker-probe-')));
  for (const end = Date.now() + 30_000; ; await new Promise((r) => setTimeout(r, 250))) {
    const err = await docker(['pull', `${HOST}:1/probe:none`]).then(() => undefined, (e: Error) => e);
    if (err && !/no such host/.test(err.message)) break;
    if (Date.now() > end) throw new Error(`the docker daemon does not resolve ${HOST} from /etc/hosts: ${err?.message}`);
  }
  layout = path.join(work, 'layout');
  await writeLayout(layout, 'v1', { image: buildImage([{ seed: `e2e-tls-${HOST}`, size: 384 * 1024 }]) });
});

afterAll(async () => {
  const hosts = await readFile(HOSTS, 'utf8');
  await writeFile(HOSTS, hosts.split('\n').filter((line) => line !== HOSTS_LINE).join('\n'));
  for (const dir of certDirs) await rm(dir, { recursive: true, force: true });
  if (madeCertsD) await rmdir(CERTS_D).catch(() => {}); // only if empty: others may have put theirs since
  await rm(work, { recursive: true, force: true });
});

/** The serial of the certificate the registry presents to a new connection. */
function servedSerial(port: number, caPem: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '::1', port, servername: HOST, ca: caPem }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

/** A --cert-dir for skopeo: the CA, and optionally a client certificate. */
async function skopeoCertDir(name: string, client?: { cert: string; key: string }): Promise<string> {
  const dir = await mkdtemp(path.join(work, `certs-${name}-`));
  await copyFile(ca.cert, path.join(dir, 'ca.crt'));
  if (client) {
    await copyFile(client.cert, path.join(dir, 'client.cert'));
    await copyFile(client.key, path.join(dir, 'client.key'));
  }
  return dir;
}

describe('TLS with docker and skopeo (token auth, optional client certificates)', () => {
  const dockerHost = inject('dockerHost');
  let registry: TestRegistry;
  let hostPort: string;
  let certPath: string;
  let keyPath: string;
  let firstSerial: string;
  let skopeo: Skopeo;
  const requests: RequestLine[] = [];

  beforeAll(async () => {
    const issued = await ca.server(HOST, path.join(work, 'server'));
    firstSerial = issued.serial;
    certPath = path.join(work, 'live.crt');
    keyPath = path.join(work, 'live.key');
    await copyFile(issued.cert, certPath);
    await copyFile(issued.key, keyPath);
    registry = await startTestRegistry({
      requests,
      env: {
        DRREG_LISTEN: '[::1]:0',
        DRREG_TLS_CERTIFICATE: certPath,
        DRREG_TLS_KEY: keyPath,
        DRREG_TLS_CLIENTCA: ca.cert,
        DRREG_TLS_RELOADINTERVAL: '200ms',
        DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
        DRREG_AUTH_USERS: JSON.stringify([{ name: 'alice', password: await hashPassword(ALICE_PASSWORD, { logN: 12, r: 8, p: 1 }) }, { name: 'bob' }]),
        DRREG_AUTH_ACCESS: JSON.stringify([
          { repositories: 'moodle/*', users: ['alice'], actions: ['pull', 'push'] },
          { repositories: 'bob/*', users: ['bob'], actions: ['pull', 'push'] },
        ]),
      },
    });
    hostPort = `${HOST}:${registry.port}`;
    skopeo = await freshSkopeo(work);
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('docker refuses the registry until it trusts the CA, then logs in (realm over https), pushes and pulls', async () => {
    const docker = dockerAs(dockerHost, await mkdtemp(path.join(work, 'docker-alice-')));
    const login = () => docker(['login', hostPort, '--username', 'alice', '--password-stdin'], ALICE_PASSWORD);
    await expect(login()).rejects.toThrow(/x509|certificate signed by unknown authority/);

    await copyFile(ca.cert, path.join(await dockerCertDir(registry.port), 'ca.crt'));
    expect((await login()).stdout).toMatch(/Login Succeeded/);
    // docker fetched its token from the realm the registry named: https on this host and port.
    const tokenLine = requests.find((r) => r.path === '/auth/token' && r.status === 200 && r.user === 'alice');
    expect(tokenLine).toBeDefined();

    const ref = `${hostPort}/moodle/web:c01`;
    await skopeo(['copy', '--dest-daemon-host', dockerHost, `oci:${layout}:v1`, `docker-daemon:${ref}`]);
    const pushed = /digest: (sha256:[0-9a-f]{64})/.exec((await docker(['push', ref])).stdout)?.[1];
    expect(pushed).toBeDefined();
    await docker(['rmi', ref]);
    expect(/Digest: (sha256:[0-9a-f]{64})/.exec((await docker(['pull', ref])).stdout)?.[1]).toBe(pushed);
    await docker(['rmi', ref]);
    // Request logs name the user and the client's address.
    expect(requests.some((r) => r.method === 'PUT' && r.path === '/v2/moodle/web/manifests/c01' && r.user === 'alice' && r.client === '::1')).toBe(true);
  }, 300_000);

  it('skopeo pushes and reads with --cert-dir; without the CA it refuses the registry', async () => {
    const certs = await skopeoCertDir('skopeo');
    const creds = `alice:${ALICE_PASSWORD}`;
    const empty = await mkdtemp(path.join(work, 'no-certs-'));
    await expect(skopeo(['inspect', '--raw', '--cert-dir', empty, '--creds', creds, `docker://${hostPort}/moodle/web:c01`])).rejects.toThrow(/x509|unknown authority/);

    const digestFile = path.join(work, 'skopeo-digest');
    await skopeo(['copy', '--dest-cert-dir', certs, '--dest-creds', creds, '--digestfile', digestFile, `oci:${layout}:v1`, `docker://${hostPort}/moodle/app:v1`]);
    const raw = await skopeo(['inspect', '--raw', '--cert-dir', certs, '--creds', creds, `docker://${hostPort}/moodle/app:v1`]);
    expect(JSON.parse(raw.stdout)).toHaveProperty('schemaVersion', 2);
    expect((await readFile(digestFile, 'utf8')).trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
  }, 300_000);

  it('a client certificate naming a user stands in for docker login: docker and skopeo push as that user', async () => {
    const bob = await ca.client('bob', path.join(work, 'bob'));
    // docker: the client certificate in certs.d, and no login at all.
    const dir = await dockerCertDir(registry.port);
    await copyFile(bob.cert, path.join(dir, 'client.cert'));
    await copyFile(bob.key, path.join(dir, 'client.key'));
    const docker = dockerAs(dockerHost, await mkdtemp(path.join(work, 'docker-bob-')));
    const ref = `${hostPort}/bob/tools:v1`;
    await skopeo(['copy', '--dest-daemon-host', dockerHost, `oci:${layout}:v1`, `docker-daemon:${ref}`]);
    await docker(['push', ref]);
    await docker(['rmi', ref]);
    await docker(['pull', ref]);
    await docker(['rmi', ref]);
    // Outside bob's rights the certificate grants nothing.
    const other = `${hostPort}/moodle/bob-was-here:v1`;
    await skopeo(['copy', '--dest-daemon-host', dockerHost, `oci:${layout}:v1`, `docker-daemon:${other}`]);
    await expect(docker(['push', other])).rejects.toThrow(/denied|unauthorized|insufficient/i);
    await docker(['rmi', other]);
    expect(requests.some((r) => r.method === 'PUT' && r.path === '/v2/bob/tools/manifests/v1' && r.status === 201 && r.user === 'bob')).toBe(true);

    // skopeo: the same certificate in --cert-dir, no credentials.
    const certs = await skopeoCertDir('bob', bob);
    await skopeo(['copy', '--dest-cert-dir', certs, `oci:${layout}:v1`, `docker://${hostPort}/bob/tools:v2`]);
    await skopeo(['inspect', '--raw', '--cert-dir', certs, `docker://${hostPort}/bob/tools:v2`]);
  }, 300_000);

  it('serves a renewed certificate (new serial) without a restart; docker keeps pulling', async () => {
    const caPem = await readFile(ca.cert);
    expect(await servedSerial(registry.port, caPem)).toBe(firstSerial);
    const renewed = await ca.server(HOST, path.join(work, 'renewed'));
    // As certbot or a Kubernetes Secret does: new files renamed into place.
    await copyFile(renewed.key, `${keyPath}.new`);
    await copyFile(renewed.cert, `${certPath}.new`);
    await rename(`${keyPath}.new`, keyPath);
    await rename(`${certPath}.new`, certPath);
    const deadline = Date.now() + 20_000;
    let served = await servedSerial(registry.port, caPem);
    while (served !== renewed.serial && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      served = await servedSerial(registry.port, caPem);
    }
    expect(served).toBe(renewed.serial);

    const docker = dockerAs(dockerHost, await mkdtemp(path.join(work, 'docker-after-renewal-')));
    const ref = `${hostPort}/bob/tools:v1`; // bob's client certificate is still in certs.d
    await docker(['pull', ref]);
    await docker(['rmi', ref]);
  }, 300_000);
});

describe('mutual TLS required, with docker and skopeo', () => {
  const dockerHost = inject('dockerHost');
  let registry: TestRegistry;
  let hostPort: string;
  const requests: RequestLine[] = [];

  beforeAll(async () => {
    const issued = await ca.server(HOST, path.join(work, 'server-mtls'));
    registry = await startTestRegistry({
      requests,
      env: { DRREG_LISTEN: '[::1]:0', DRREG_TLS_CERTIFICATE: issued.cert, DRREG_TLS_KEY: issued.key, DRREG_TLS_CLIENTCA: ca.cert, DRREG_TLS_CLIENTAUTH: 'required' },
    });
    hostPort = `${HOST}:${registry.port}`;
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('refuses docker and skopeo without a client certificate; admits them with one', async () => {
    const skopeo = await freshSkopeo(work);
    const ref = `${hostPort}/site/db:v1`;
    const caOnly = await skopeoCertDir('ca-only');
    await expect(skopeo(['copy', '--dest-cert-dir', caOnly, `oci:${layout}:v1`, `docker://${ref}`])).rejects.toThrow(/certificate|tls|handshake|EOF|reset/i);

    const dir = await dockerCertDir(registry.port);
    await copyFile(ca.cert, path.join(dir, 'ca.crt'));
    const docker = dockerAs(dockerHost, await mkdtemp(path.join(work, 'docker-mtls-')));
    await skopeo(['copy', '--dest-daemon-host', dockerHost, `oci:${layout}:v1`, `docker-daemon:${ref}`]);
    await expect(docker(['push', ref])).rejects.toThrow(/certificate|tls|handshake|EOF|reset/i);
    expect(requests.filter((r) => r.path.startsWith('/v2/site/'))).toEqual([]); // not one request got through

    const site = await ca.client('site-a', path.join(work, 'site-a'));
    await copyFile(site.cert, path.join(dir, 'client.cert'));
    await copyFile(site.key, path.join(dir, 'client.key'));
    await docker(['push', ref]);
    await docker(['rmi', ref]);
    await docker(['pull', ref]);
    await docker(['rmi', ref]);
    expect(requests.some((r) => r.method === 'PUT' && r.path === '/v2/site/db/manifests/v1' && r.user === 'site-a' && r.client === '::1')).toBe(true);

    const withCert = await skopeoCertDir('site-a', site);
    await skopeo(['copy', '--dest-cert-dir', withCert, `oci:${layout}:v1`, `docker://${hostPort}/site/db:v2`]);
  }, 300_000);
});
