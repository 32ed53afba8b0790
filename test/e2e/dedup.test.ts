// The DR scenario of docs/dedup.md: system B, another host with an empty client cache, pushes an
// image whose base system A pushed to another repository. With dedup.linkExistingOnHead (the
// default) the base is not sent again; without it, it is sent but still stored once. With token
// auth, only a user who may read A's repository is spared the upload.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/crypto/passwords.js';
import { startTestRegistry, type RequestLine, type TestRegistry } from '../helpers/registry.js';
import { freshSkopeo } from './clients.js';
import { buildImage, writeLayout, type Image, type LayerSpec } from './images.js';

const MiB = 1024 * 1024;
const BASE: LayerSpec[] = [{ seed: 'dedup-base', size: 4 * MiB }];
const baseSize = (image: ReturnType<typeof buildImage>) => image.layers[0]!.bytes.length;

/**
 * What B's push (`pushB`, the request log lines) sent: its whole base or next to nothing. Either
 * way the base is stored once: the parts under data/ add up to the distinct blobs of A and B.
 */
async function expectBaseSentOnlyIf(sendsBase: boolean, pushB: RequestLine[], registry: TestRegistry, a: Image, b: Image) {
  // bytesIn counts the connection's bytes (headers too) since its previous request.
  const sent = pushB.filter((r) => r.path.includes('/blobs/uploads/')).reduce((n, r) => n + r.bytesIn, 0);
  if (sendsBase) expect(sent).toBeGreaterThan(baseSize(b));
  else expect(sent).toBeLessThan(baseSize(b) / 10);
  let stored = 0;
  for await (const obj of registry.store.list('data/')) stored += obj.size;
  const distinct = new Map([a, b].flatMap((img) => [img.manifest, img.config, ...img.layers]).map((x) => [x.digest, x.bytes.length]));
  expect(stored).toBe([...distinct.values()].reduce((n, s) => n + s, 0));
}

describe.each([
  { linkExistingOnHead: 'default', sendsBase: false }, // out of the box: B sends 0 bytes of A's base
  { linkExistingOnHead: 'true', sendsBase: false },
  { linkExistingOnHead: 'false', sendsBase: true },
])('second host, dedup.linkExistingOnHead=$linkExistingOnHead', ({ linkExistingOnHead, sendsBase }) => {
  let registry: TestRegistry;
  let work: string;
  const requests: RequestLine[] = [];

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-dedup-'));
    const env: Record<string, string> = linkExistingOnHead === 'default' ? {} : { DRREG_DEDUP_LINKEXISTINGONHEAD: linkExistingOnHead };
    registry = await startTestRegistry({ env, requests });
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it(`B ${sendsBase ? 'sends' : 'does not send'} the shared base, and the store holds it once`, async () => {
    const a = buildImage([...BASE, { seed: 'dedup-a', size: 100_000 }]);
    const b = buildImage([...BASE, { seed: 'dedup-b', size: 100_000 }]);
    await writeLayout(path.join(work, 'a'), 'v1', { image: a });
    await writeLayout(path.join(work, 'b'), 'v1', { image: b });

    const hostA = await freshSkopeo(work);
    await hostA(['copy', '--dest-tls-verify=false', `oci:${path.join(work, 'a')}:v1`, `docker://${registry.hostPort}/site/system-a:latest`]);
    const before = requests.length;
    const hostB = await freshSkopeo(work); // another machine: no cache that could suggest a mount
    await hostB(['copy', '--dest-tls-verify=false', `oci:${path.join(work, 'b')}:v1`, `docker://${registry.hostPort}/site/system-b:latest`]);

    await expectBaseSentOnlyIf(sendsBase, requests.slice(before), registry, a, b);

    // And B pulls back complete from its own repository.
    const out = path.join(work, 'b-back');
    await hostB(['copy', '--src-tls-verify=false', `docker://${registry.hostPort}/site/system-b:latest`, `oci:${out}:v1`]);
    const head = await fetch(`${registry.url}/v2/site/system-b/blobs/${b.layers[0]!.digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  }, 300_000);
});

describe.each([
  { user: 'ops', sendsBase: false }, // may read site/system-a: the base is linked on HEAD
  { user: 'only-b', sendsBase: true }, // may not: the HEAD answers 404 and B sends the base
])('second host with token auth, as $user', ({ user, sendsBase }) => {
  let registry: TestRegistry;
  let work: string;
  const requests: RequestLine[] = [];
  const password = randomBytes(8).toString('hex');

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'drreg-dedup-auth-'));
    const hash = await hashPassword(password, { logN: 12, r: 8, p: 1 });
    registry = await startTestRegistry({
      env: {
        DRREG_DEDUP_LINKEXISTINGONHEAD: 'true',
        DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
        DRREG_AUTH_USERS: JSON.stringify(['ops', 'only-b'].map((name) => ({ name, password: hash }))),
        DRREG_AUTH_ACCESS: JSON.stringify([
          { repositories: 'site/*', users: ['ops'], actions: ['pull', 'push'] },
          { repositories: 'site/system-b', users: ['only-b'], actions: ['pull', 'push'] },
        ]),
      },
      requests,
    });
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it(`B ${sendsBase ? 'sends' : 'does not send'} the shared base`, async () => {
    const a = buildImage([...BASE, { seed: 'dedup-auth-a', size: 100_000 }]);
    const b = buildImage([...BASE, { seed: 'dedup-auth-b', size: 100_000 }]);
    await writeLayout(path.join(work, 'a'), 'v1', { image: a });
    await writeLayout(path.join(work, 'b'), 'v1', { image: b });

    const hostA = await freshSkopeo(work);
    await hostA(['copy', '--dest-tls-verify=false', '--dest-creds', `ops:${password}`, `oci:${path.join(work, 'a')}:v1`, `docker://${registry.hostPort}/site/system-a:latest`]);
    const before = requests.length;
    const hostB = await freshSkopeo(work);
    await hostB(['copy', '--dest-tls-verify=false', '--dest-creds', `${user}:${password}`, `oci:${path.join(work, 'b')}:v1`, `docker://${registry.hostPort}/site/system-b:latest`]);

    await expectBaseSentOnlyIf(sendsBase, requests.slice(before), registry, a, b);
  }, 300_000);
});
