// The registry's own TLS with a test CA made by openssl: TLS 1.2+ only, a bad file stops start-up
// naming its setting, a renewed certificate is served without a restart (and a half-written
// renewal is not), mutual TLS maps a verified certificate to its user or, when required, refuses
// clients without one; request logs name the user and the client address.
import { randomBytes, X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/index.js';
import { hashPassword } from '../../src/crypto/passwords.js';
import { startTestRegistry, type RequestLine, type TestRegistry } from '../helpers/registry.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';

let work: string;
let ca: TestCa;
let serverCert: { cert: string; key: string; serial: string };

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'drreg-tls-'));
  ca = await makeTestCa(work);
  serverCert = await ca.server('localhost', path.join(work, 'server'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  protocol: string | false | null;
  peerSerial: string;
}

/** One HTTPS request trusting the test CA, optionally with a client certificate. */
async function request(url: string, options: { cert?: string; key?: string; headers?: Record<string, string>; ca?: Buffer } = {}): Promise<Answer> {
  const cert = options.cert ? await readFile(options.cert) : undefined;
  const key = options.key ? await readFile(options.key) : undefined;
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { ca: options.ca, cert, key, headers: options.headers, agent: false, servername: 'localhost' },
      (res) => {
        const chunks: Buffer[] = [];
        const socket = res.socket as tls.TLSSocket;
        const peerSerial = socket.getPeerCertificate().serialNumber;
        const protocol = socket.alpnProtocol;
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString(), protocol, peerSerial }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The serial of the certificate the server presents to a new connection. */
function servedSerial(port: number, caPem: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: caPem }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

async function waitFor<T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  let last: T | undefined;
  while (Date.now() < end) {
    last = await probe();
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: not reached in ${ms} ms (last: ${JSON.stringify(last)})`);
}

describe('TLS start-up', () => {
  const start = (env: Record<string, string>) => startTestRegistry({ env });

  it('a certificate or key that cannot be used stops start-up naming the setting', async () => {
    const missing = path.join(work, 'nope.crt');
    await expect(start({ DRREG_TLS_CERTIFICATE: missing, DRREG_TLS_KEY: serverCert.key })).rejects.toThrow(
      /tls\.certificate \(DRREG_TLS_CERTIFICATE\): cannot read .*nope\.crt/,
    );
    await expect(start({ DRREG_TLS_CERTIFICATE: serverCert.cert, DRREG_TLS_KEY: path.join(work, 'nope.key') })).rejects.toThrow(
      /tls\.key \(DRREG_TLS_KEY\): cannot read .*nope\.key/,
    );
    const other = await ca.server('localhost', path.join(work, 'other'));
    await expect(start({ DRREG_TLS_CERTIFICATE: serverCert.cert, DRREG_TLS_KEY: other.key })).rejects.toThrow(
      /tls\.key \(DRREG_TLS_KEY\): .*other\.key does not belong to the certificate/,
    );
    const garbage = path.join(work, 'garbage.crt');
    await writeFile(garbage, 'not a certificate\n');
    await expect(start({ DRREG_TLS_CERTIFICATE: garbage, DRREG_TLS_KEY: serverCert.key })).rejects.toThrow(/tls\.certificate .*holds no PEM certificate/);
    await expect(start({ DRREG_TLS_CERTIFICATE: serverCert.cert })).rejects.toThrow(ConfigError);
    await expect(start({ DRREG_TLS_CERTIFICATE: serverCert.cert })).rejects.toThrow(/tls\.key: tls\.certificate and tls\.key are set together/);
  });
});

describe('TLS serving', () => {
  let registry: TestRegistry;
  let certPath: string;
  let keyPath: string;
  const requests: RequestLine[] = [];
  let caPem: Buffer;

  beforeAll(async () => {
    caPem = await readFile(ca.cert);
    // The registry reads its own copies, which the test renews by renaming new files over them.
    certPath = path.join(work, 'live.crt');
    keyPath = path.join(work, 'live.key');
    await copyFile(serverCert.cert, certPath);
    await copyFile(serverCert.key, keyPath);
    registry = await startTestRegistry({
      requests,
      env: { DRREG_TLS_CERTIFICATE: certPath, DRREG_TLS_KEY: keyPath, DRREG_TLS_RELOADINTERVAL: '200ms', DRREG_TLS_CLIENTCA: ca.cert },
    });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('serves the registry over HTTPS with HTTP/1.1, and not over plain HTTP', async () => {
    expect(registry.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const answer = await request(`${registry.url}/v2/`, { ca: caPem });
    expect(answer.status).toBe(200);
    expect(answer.peerSerial).toBe(serverCert.serial);
    await expect(fetch(`http://127.0.0.1:${registry.port}/v2/`)).rejects.toThrow();
    // A client offering HTTP/2 by ALPN is answered with HTTP/1.1 (docs/tls.md says why).
    const alpn = await new Promise<string | false | null>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: registry.port, servername: 'localhost', ca: caPem, ALPNProtocols: ['h2', 'http/1.1'] }, () => {
        resolve(socket.alpnProtocol);
        socket.end();
      });
      socket.on('error', reject);
    });
    expect(alpn).toBe('http/1.1');
    // Not trusted without the CA.
    await expect(request(`${registry.url}/v2/`)).rejects.toThrow(/self-signed|unable to verify|certificate/i);
  });

  it('refuses TLS 1.1 and accepts 1.2 and 1.3', async () => {
    const connect = (minVersion: tls.SecureVersion, maxVersion: tls.SecureVersion) =>
      new Promise<string | null>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port: registry.port, servername: 'localhost', ca: caPem, minVersion, maxVersion, ciphers: 'DEFAULT:@SECLEVEL=0' }, () => {
          const version = socket.getProtocol();
          socket.end();
          resolve(version);
        });
        socket.on('error', reject);
      });
    await expect(connect('TLSv1', 'TLSv1.1')).rejects.toThrow(/protocol|version|alert/i);
    expect(await connect('TLSv1.2', 'TLSv1.2')).toBe('TLSv1.2');
    expect(await connect('TLSv1.3', 'TLSv1.3')).toBe('TLSv1.3');
  });

  it('a client certificate signed by clientCa names the user in the request log; none or an untrusted one names nobody', async () => {
    const alice = await ca.client('alice', path.join(work, 'alice'));
    const foreign = await makeTestCa(await mkdtemp(path.join(work, 'foreign-')), 'someone else');
    const mallory = await foreign.client('mallory', path.join(work, 'mallory'));
    const tag = randomBytes(4).toString('hex');
    const paths = { alice: `/v2/_catalog?a=${tag}`, none: `/v2/`, mallory: `/v2/_catalog` };
    expect((await request(`${registry.url}/v2/_catalog`, { ca: caPem, cert: alice.cert, key: alice.key, headers: { 'X-Request-Id': `alice-${tag}` } })).status).toBe(200);
    expect((await request(`${registry.url}${paths.none}`, { ca: caPem, headers: { 'X-Request-Id': `none-${tag}` } })).status).toBe(200);
    expect((await request(`${registry.url}/v2/_catalog`, { ca: caPem, cert: mallory.cert, key: mallory.key, headers: { 'X-Request-Id': `mallory-${tag}` } })).status).toBe(200);
    const line = (id: string) => waitFor(`log line ${id}`, async () => requests.find((r) => r.requestId === id), (r) => r !== undefined);
    expect(await line(`alice-${tag}`)).toMatchObject({ user: 'alice', client: '127.0.0.1' });
    const none = (await line(`none-${tag}`))!;
    expect(none.user).toBeUndefined();
    expect(none.client).toBe('127.0.0.1');
    expect((await line(`mallory-${tag}`))!.user).toBeUndefined();
  });

  it('serves a renewed certificate without a restart; a half-written renewal keeps the old one', async () => {
    expect(await servedSerial(registry.port, caPem)).toBe(serverCert.serial);
    const renewed = await ca.server('localhost', path.join(work, 'renewed'));
    expect(renewed.serial).not.toBe(serverCert.serial);

    // The certificate lands first, its key not yet: the pair does not match, the old one stays.
    await copyFile(renewed.cert, `${certPath}.new`);
    await rename(`${certPath}.new`, certPath);
    expect(await registry.reloadTls!()).toBe(false);
    expect(await servedSerial(registry.port, caPem)).toBe(serverCert.serial);
    expect((await request(`${registry.url}/v2/`, { ca: caPem })).status).toBe(200);

    // Then the key: the timer installs the pair, no restart, no call from here.
    await copyFile(renewed.key, `${keyPath}.new`);
    await rename(`${keyPath}.new`, keyPath);
    const served = await waitFor('the renewed certificate is served', () => servedSerial(registry.port, caPem), (s) => s === renewed.serial);
    expect(served).toBe(renewed.serial);
    expect(new X509Certificate(await readFile(certPath)).serialNumber).toBe(renewed.serial);
    expect((await request(`${registry.url}/v2/`, { ca: caPem })).status).toBe(200);
  });
});

describe('mutual TLS required', () => {
  let registry: TestRegistry;
  let caPem: Buffer;
  const requests: RequestLine[] = [];

  beforeAll(async () => {
    caPem = await readFile(ca.cert);
    const users = [
      { name: 'carol', password: await hashPassword('carol-password', { logN: 12, r: 8, p: 1 }) },
      { name: 'dave' },
      { name: 'ops', password: await hashPassword('ops-password', { logN: 12, r: 8, p: 1 }) },
    ];
    registry = await startTestRegistry({
      requests,
      env: {
        DRREG_TLS_CERTIFICATE: serverCert.cert,
        DRREG_TLS_KEY: serverCert.key,
        DRREG_TLS_CLIENTCA: ca.cert,
        DRREG_TLS_CLIENTAUTH: 'required',
        DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
        DRREG_AUTH_USERS: JSON.stringify(users),
        DRREG_AUTH_ADMINS: '["ops"]',
        DRREG_AUTH_ACCESS: JSON.stringify([{ repositories: 'dave/*', users: ['dave'], actions: ['pull', 'push'] }]),
      },
    });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('refuses a client without a certificate or with one from another CA', async () => {
    await expect(request(`${registry.url}/v2/`, { ca: caPem })).rejects.toThrow(/certificate|alert|socket hang up|ECONNRESET/i);
    const foreign = await makeTestCa(await mkdtemp(path.join(work, 'foreign2-')), 'not trusted');
    const eve = await foreign.client('dave', path.join(work, 'eve'));
    await expect(request(`${registry.url}/v2/`, { ca: caPem, cert: eve.cert, key: eve.key })).rejects.toThrow(/certificate|alert|socket hang up|ECONNRESET/i);
  });

  it('a certificate naming a user of auth.users gets that user\'s token without a password; the realm says https', async () => {
    const dave = await ca.client('dave', path.join(work, 'dave'));
    const challenge = await request(`${registry.url}/v2/dave/app/tags/list`, { ca: caPem, cert: dave.cert, key: dave.key });
    expect(challenge.status).toBe(401);
    const realm = /realm="([^"]+)"/.exec(String(challenge.headers['www-authenticate']))?.[1];
    expect(realm).toBe(`https://127.0.0.1:${registry.port}/auth/token`);
    const scope = 'repository:dave/app:pull,push';
    const tokenAnswer = await request(`${realm}?service=dr-registry&scope=${encodeURIComponent(scope)}`, { ca: caPem, cert: dave.cert, key: dave.key });
    expect(tokenAnswer.status).toBe(200);
    const token = (JSON.parse(tokenAnswer.body) as { token: string }).token;
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string; access: unknown };
    expect(claims.sub).toBe('dave');
    expect(claims.access).toEqual([{ type: 'repository', name: 'dave/app', actions: ['pull', 'push'] }]);
    const listed = await request(`${registry.url}/v2/dave/app/tags/list`, { ca: caPem, cert: dave.cert, key: dave.key, headers: { Authorization: `Bearer ${token}`, 'X-Request-Id': 'dave-list' } });
    expect(listed.status).toBe(404); // NAME_UNKNOWN: admitted, nothing pushed yet
    expect(JSON.parse(listed.body)).toMatchObject({ errors: [{ code: 'NAME_UNKNOWN' }] });
    const line = await waitFor('log line', async () => requests.find((r) => r.requestId === 'dave-list'), (r) => r !== undefined);
    expect(line).toMatchObject({ user: 'dave', client: '127.0.0.1' });

    // A certificate naming no configured user is anonymous: nothing granted.
    const zed = await ca.client('zed', path.join(work, 'zed'));
    const anon = await request(`${realm}?service=dr-registry&scope=${encodeURIComponent('repository:dave/app:pull')}`, { ca: caPem, cert: zed.cert, key: zed.key });
    const anonClaims = JSON.parse(Buffer.from((JSON.parse(anon.body) as { token: string }).token.split('.')[1]!, 'base64url').toString()) as { sub: string; access: Array<{ actions: string[] }> };
    expect(anonClaims.sub).toBe('');
    expect(anonClaims.access[0]!.actions).toEqual([]);
    // A user without a password cannot sign in with one.
    const basic = Buffer.from('dave:').toString('base64');
    const refused = await request(`${realm}?service=dr-registry`, { ca: caPem, cert: zed.cert, key: zed.key, headers: { Authorization: `Basic ${basic}` } });
    expect(refused.status).toBe(401);
  });

  it('a certificate naming an admin is that user for repositories, but never opens the admin API: that takes the password', async () => {
    const ops = await ca.client('ops', path.join(work, 'ops'));
    const realm = `${registry.url}/auth/token`;
    const scope = 'registry:admin:*';
    const byCert = await request(`${realm}?service=dr-registry&scope=${encodeURIComponent(scope)}`, { ca: caPem, cert: ops.cert, key: ops.key });
    expect(byCert.status).toBe(200);
    const certToken = (JSON.parse(byCert.body) as { token: string }).token;
    const certClaims = JSON.parse(Buffer.from(certToken.split('.')[1]!, 'base64url').toString()) as { sub: string; access: unknown[] };
    expect(certClaims.sub).toBe('ops');
    expect(certClaims.access).toEqual([]);
    const adminByCert = await request(`${registry.url}/admin/v1/repositories`, { ca: caPem, cert: ops.cert, key: ops.key, headers: { Authorization: `Bearer ${certToken}` } });
    expect(adminByCert.status).toBe(401);
    // With the password (and any certificate) the admin scope is granted as before.
    const basic = Buffer.from('ops:ops-password').toString('base64');
    const byPassword = await request(`${realm}?service=dr-registry&scope=${encodeURIComponent(scope)}`, { ca: caPem, cert: ops.cert, key: ops.key, headers: { Authorization: `Basic ${basic}` } });
    const passwordToken = (JSON.parse(byPassword.body) as { token: string }).token;
    const adminByPassword = await request(`${registry.url}/admin/v1/repositories`, { ca: caPem, cert: ops.cert, key: ops.key, headers: { Authorization: `Bearer ${passwordToken}` } });
    expect(adminByPassword.status).toBe(200);
  });
});
