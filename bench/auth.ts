// What token auth costs: manifest GETs under concurrent load on a registry without auth and on
// one with it (each request carries a token the registry verifies), side by side in one run, and
// the token endpoint itself (a login whose password check is remembered, and the first, scrypt).
//   npm run build && npx tsx bench/auth.ts [--seconds 10] [--connections 16]
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { hashPassword } from '../src/crypto/passwords.js';
import { startOurs, timed } from './lib.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '16' } } });
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const password = randomBytes(12).toString('hex');
const credentials = `Basic ${Buffer.from(`ops:${password}`).toString('base64')}`;
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function token(url: string, scope: string): Promise<string> {
  const r = await fetch(`${url}/auth/token?service=dr-registry&scope=${scope}`, { headers: { Authorization: credentials } });
  if (r.status !== 200) throw new Error(`token: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { token: string }).token;
}

/** Pushes a one-layer image as bench/app:latest; returns the headers a pull then needs. */
async function pushImage(url: string, authorization: string | undefined): Promise<Record<string, string>> {
  const auth: Record<string, string> = authorization ? { Authorization: authorization } : {};
  const config = Buffer.from('{"os":"linux"}');
  const layer = randomBytes(4096);
  for (const blob of [config, layer]) {
    const r = await fetch(`${url}/v2/bench/app/blobs/uploads/?digest=${sha(blob)}`, { method: 'POST', body: blob, headers: auth });
    if (r.status !== 201) throw new Error(`upload: ${r.status}`);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }],
  });
  const r = await fetch(`${url}/v2/bench/app/manifests/latest`, { method: 'PUT', body: manifest, headers: { ...auth, 'Content-Type': OCI_MANIFEST } });
  if (r.status !== 201) throw new Error(`manifest: ${r.status}`);
  return { ...auth, Accept: OCI_MANIFEST };
}

async function load(url: string, headers: Record<string, string>) {
  const r = await autocannon({ url, connections, duration: seconds, headers });
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${url}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return { rps: r.requests.total / r.duration, p50: r.latency.p50, p99: r.latency.p99 };
}

// Every registry started is stopped at the end, whatever fails on the way.
const started: Array<{ stop(): Promise<void> }> = [];
async function start(...args: Parameters<typeof startOurs>) {
  const registry = await startOurs(...args);
  started.push(registry);
  return registry;
}

try {
  const open = await start('no auth', { DRREG_STORAGE_FILESYSTEM_FSYNC: 'false' });
  const guarded = await start('token auth', {
    DRREG_STORAGE_FILESYSTEM_FSYNC: 'false',
    DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
    DRREG_AUTH_USERS: JSON.stringify([{ name: 'ops', password: await hashPassword(password) }]),
    DRREG_AUTH_ACCESS: JSON.stringify([{ repositories: '*', users: ['ops'], actions: ['pull', 'push'] }]),
  });
  const openHeaders = await pushImage(open.url, undefined);
  const pushToken = await token(guarded.url, 'repository:bench/app:pull,push');
  await pushImage(guarded.url, `Bearer ${pushToken}`);
  const pullHeaders = { Authorization: `Bearer ${await token(guarded.url, 'repository:bench/app:pull')}`, Accept: OCI_MANIFEST };

  // Alternated, twice each, so a busy moment of the machine does not land on one side only.
  const plainRuns = [];
  const authRuns = [];
  for (let round = 0; round < 2; round++) {
    plainRuns.push(await load(`${open.url}/v2/bench/app/manifests/latest`, openHeaders));
    authRuns.push(await load(`${guarded.url}/v2/bench/app/manifests/latest`, pullHeaders));
  }
  const best = (runs: Array<{ rps: number; p50: number; p99: number }>) => runs.reduce((a, b) => (b.rps > a.rps ? b : a));
  const plain = best(plainRuns);
  const withAuth = best(authRuns);

  // A fresh registry process has not verified this password yet: the first login pays scrypt.
  const fresh = await start('token auth, first login', {
    DRREG_STORAGE_FILESYSTEM_FSYNC: 'false',
    DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
    DRREG_AUTH_USERS: JSON.stringify([{ name: 'ops', password: await hashPassword(password) }]),
  });
  const firstLogin = await timed(() => token(fresh.url, 'repository:bench/app:pull'));
  const logins = await load(`${guarded.url}/auth/token?service=dr-registry&scope=repository:bench/app:pull`, { Authorization: credentials });

  const row = (name: string, r: { rps: number; p50: number; p99: number }) =>
    `${name.padEnd(34)} ${r.rps.toFixed(0).padStart(8)} ${String(r.p50).padStart(8)} ${String(r.p99).padStart(8)}`;
  console.log(`token auth overhead: ${connections} connections, ${seconds} s per run, best of 2 alternated runs, filesystem store, one process each`);
  console.log(`${'load'.padEnd(34)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}`);
  console.log(row('manifest GET, no auth', plain));
  console.log(row('manifest GET, bearer token', withAuth));
  console.log(row('token endpoint, remembered login', logins));
  console.log(`ratio with auth / without: ${(withAuth.rps / plain.rps).toFixed(2)}x req/s, ${(withAuth.p99 / Math.max(plain.p99, 1)).toFixed(2)}x p99`);
  console.log(`first login of a user (scrypt, default cost): ${(firstLogin.seconds * 1000).toFixed(0)} ms`);
} finally {
  await Promise.all(started.map((r) => r.stop()));
}
